package consumer

import (
	"context"
	"time"
)

// batcher gathers items from many workers into calls of up to max items,
// waiting at most linger for a batch to fill. Each Do returns the error of
// the call its item went out in.
type batcher[T any] struct {
	in     chan pending[T]
	max    int
	linger time.Duration
	flush  func(context.Context, []T) []error
	done   chan struct{}
}

type pending[T any] struct {
	v   T
	res chan error
}

func newBatcher[T any](max int, linger time.Duration, flush func(context.Context, []T) []error) *batcher[T] {
	return &batcher[T]{in: make(chan pending[T]), max: max, linger: linger, flush: flush, done: make(chan struct{})}
}

// Do submits v and waits for its batch to be flushed.
func (b *batcher[T]) Do(ctx context.Context, v T) error {
	p := pending[T]{v: v, res: make(chan error, 1)}
	select {
	case b.in <- p:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-p.res:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// run flushes batches until stop is closed and every submitted item is out.
// ctx bounds the flush calls themselves.
func (b *batcher[T]) run(ctx context.Context, stop <-chan struct{}) {
	defer close(b.done)
	var batch []pending[T]
	var timer <-chan time.Time
	send := func() {
		if len(batch) == 0 {
			return
		}
		vs := make([]T, len(batch))
		for i, p := range batch {
			vs[i] = p.v
		}
		errs := b.flush(ctx, vs)
		for i, p := range batch {
			p.res <- errs[i]
		}
		batch, timer = nil, nil
	}
	for {
		select {
		case p := <-b.in:
			batch = append(batch, p)
			if len(batch) >= b.max {
				send()
			} else if timer == nil {
				timer = time.After(b.linger)
			}
		case <-timer:
			send()
		case <-stop:
			send()
			return
		}
	}
}
