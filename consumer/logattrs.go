package consumer

import (
	"context"
	"log/slog"
	"slices"
)

type logAttrsKey struct{}

// WithLogAttrs returns ctx carrying attrs for every line logged with it
// through a logger built on NewLogHandler. The consumer puts the SQS message
// id, the Sym id and the grant id there, so the grants service's lines
// about a message name it without knowing about SQS.
func WithLogAttrs(ctx context.Context, attrs ...slog.Attr) context.Context {
	prev, _ := ctx.Value(logAttrsKey{}).([]slog.Attr)
	return context.WithValue(ctx, logAttrsKey{}, append(slices.Clip(prev), attrs...))
}

// NewLogHandler wraps h so that records logged with a context carry the
// attributes WithLogAttrs put in it, unless the line already names them.
func NewLogHandler(h slog.Handler) slog.Handler { return &ctxHandler{next: h} }

type ctxHandler struct {
	next slog.Handler
	keys []string // top-level keys already added with WithAttrs
	grp  bool     // a group is open: our attrs would land inside it
}

func (h *ctxHandler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h *ctxHandler) Handle(ctx context.Context, r slog.Record) error {
	attrs, _ := ctx.Value(logAttrsKey{}).([]slog.Attr)
	if len(attrs) > 0 && !h.grp {
		have := slices.Clone(h.keys)
		r.Attrs(func(a slog.Attr) bool { have = append(have, a.Key); return true })
		r = r.Clone()
		for _, a := range attrs {
			if !slices.Contains(have, a.Key) {
				r.AddAttrs(a)
				have = append(have, a.Key)
			}
		}
	}
	return h.next.Handle(ctx, r)
}

func (h *ctxHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	keys := slices.Clone(h.keys)
	if !h.grp {
		for _, a := range attrs {
			keys = append(keys, a.Key)
		}
	}
	return &ctxHandler{next: h.next.WithAttrs(attrs), keys: keys, grp: h.grp}
}

func (h *ctxHandler) WithGroup(name string) slog.Handler {
	return &ctxHandler{next: h.next.WithGroup(name), keys: h.keys, grp: true}
}
