package consumer

import (
	"context"
	"errors"
	"log/slog"
	"strings"

	"github.com/iamjit/iamjit/events"
	"github.com/iamjit/iamjit/grants"
	"github.com/iamjit/iamjit/internal/awsx"
)

// Grants applies decoded requests (grants.Service).
type Grants interface {
	Handle(ctx context.Context, req events.Request) (grants.Outcome, error)
	Malformed(ctx context.Context, req events.Request, derr *events.DecodeError) (grants.Outcome, error)
	Fail(ctx context.Context, req events.Request, code events.Code, msg string) (grants.Outcome, error)
}

// SymHandler turns SQS messages into Sym requests for grants.
type SymHandler struct {
	Grants Grants
	Log    *slog.Logger
}

// Handle implements Handler.
func (h *SymHandler) Handle(ctx context.Context, m Message) Disposition {
	req, err := events.Decode([]byte(m.Body))
	ctx = WithLogAttrs(ctx, slog.String("sym_event_id", req.SymEventID), slog.String("grant_id", bounded(req.GrantID())))
	var derr *events.DecodeError
	if errors.As(err, &derr) {
		if derr.SymEventID == "" {
			// No id to answer to: nothing to publish, keep it for a human.
			return Disposition{Outcome: events.OutcomePoison, Poison: &Poison{Code: derr.Code, Msg: derr.Msg}}
		}
		out, err := h.Grants.Malformed(ctx, req, derr)
		return disposition(req, out, err)
	}
	if err != nil {
		return Disposition{Outcome: events.OutcomePoison, Poison: &Poison{Code: events.CodeInvalidBody, Msg: err.Error()}}
	}
	out, err := h.Grants.Handle(ctx, req)
	return disposition(req, out, err)
}

// GiveUp implements Handler: the request is marked failed (its access, if
// any was given, is taken back) and an Access Grant Failed is published; the
// message goes to the DLQ with the cause for replay once it is fixed.
func (h *SymHandler) GiveUp(ctx context.Context, m Message, cause error) Disposition {
	poison := &Poison{Code: events.Code(awsx.Code(cause)), Msg: cause.Error()}
	req, err := events.Decode([]byte(m.Body))
	if err != nil {
		return Disposition{Outcome: events.OutcomePoison, Poison: poison}
	}
	ctx = WithLogAttrs(ctx, slog.String("sym_event_id", req.SymEventID), slog.String("grant_id", bounded(req.GrantID())))
	d := Disposition{Outcome: events.OutcomeFailed, Poison: poison, SymID: req.SymEventID, GrantID: req.GrantID()}
	if req.Type != events.TypeEscalate && req.Type != events.TypeDeescalate {
		return d
	}
	out, err := h.Grants.Fail(ctx, req, poison.Code, cause.Error())
	if err != nil {
		h.Log.WarnContext(ctx, "could not record the failure; the dead-letter queue still holds the request", "sym_event_id", req.SymEventID, "err", err)
		d.Results = []events.Result{grants.FailedResult(req, poison.Code, cause.Error())}
		return d
	}
	d.Results = out.Results
	return d
}

func disposition(req events.Request, out grants.Outcome, err error) Disposition {
	if err != nil {
		return Disposition{Outcome: events.OutcomeError, Err: err, SymID: req.SymEventID, GrantID: req.GrantID()}
	}
	return Disposition{Outcome: out.Kind, Results: out.Results, SymID: req.SymEventID, GrantID: out.GrantID}
}

// bounded keeps a sender-controlled id that goes on every log line of its
// message (a grant id is run.srn + target_id, unchecked at this point) to
// an excerpt.
func bounded(s string) string {
	if len(s) <= 256 {
		return s
	}
	return strings.ToValidUTF8(s[:256], "") + "…"
}
