package main

import (
	"context"
	"sync"
)

// group runs functions with bounded concurrency and keeps the first error;
// the bench avoids a dependency for this.
type group struct {
	ctx    context.Context
	cancel context.CancelFunc
	sem    chan struct{}
	wg     sync.WaitGroup
	once   sync.Once
	err    error
}

func newGroup(ctx context.Context, limit int) *group {
	ctx, cancel := context.WithCancel(ctx)
	return &group{ctx: ctx, cancel: cancel, sem: make(chan struct{}, limit)}
}

func (g *group) Go(f func() error) {
	g.sem <- struct{}{}
	g.wg.Add(1)
	go func() {
		defer func() { <-g.sem; g.wg.Done() }()
		if err := f(); err != nil {
			g.once.Do(func() { g.err = err; g.cancel() })
		}
	}()
}

func (g *group) Wait() error {
	g.wg.Wait()
	g.cancel()
	return g.err
}

// inBatches calls f on items size at a time (the last batch may be
// shorter), from at most workers goroutines, and returns the first error.
func inBatches[T any](ctx context.Context, items []T, size, workers int, f func(ctx context.Context, batch []T) error) error {
	g := newGroup(ctx, workers)
	for start := 0; start < len(items); start += size {
		batch := items[start:min(start+size, len(items))]
		g.Go(func() error { return f(g.ctx, batch) })
	}
	return g.Wait()
}
