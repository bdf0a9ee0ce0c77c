package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/iamjit/iamjit/events"
	"github.com/iamjit/iamjit/grants"
)

// driver sends the workload's scripts, each event once the table shows
// what the scenario needs (see Script), so that a slow emulator delays a
// scenario but never leaves its check with nothing to check.
type driver struct {
	aw  *awsClients
	w   *Workload
	mon *monitor
	// overlapped, when set, is told (the account of its group) as soon as
	// an overlap script has been exercised (its final judgement waits for
	// the long grant to end).
	overlapped func(acct string)

	mu    sync.Mutex
	notes []string // why a script was not exercised
}

func (d *driver) note(format string, args ...any) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.notes = append(d.notes, fmt.Sprintf(format, args...))
}

// Notes says, for each script not exercised, what happened instead.
func (d *driver) Notes() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.notes)
}

// Every wait for a state gives up after this long and sends the next
// event anyway: every planned event is sent, and a scenario that still
// did not happen is counted as not exercised (and driven again).
const stateWait = 40 * time.Second

// run plays s; sent is called once its last event is on the queue. It
// reports whether the scenario was exercised: for a reorder, the escalate
// went out after its tombstone was in the table and was refused
// already_revoked (as its stored result says); for an overlap, the short
// grant ended with the long one still in the membership and the monitor
// sampled the group in between.
func (d *driver) run(ctx context.Context, s *Script, sent func()) (bool, error) {
	once := false
	done := func() {
		if !once {
			once = true
			sent()
		}
	}
	defer done()
	if !sleep(ctx, time.Until(d.w.Start.Add(s.At))) {
		return false, ctx.Err()
	}
	switch s.Scenario {
	case ScenReorder:
		return d.reorder(ctx, s, done)
	case ScenOverlap:
		return d.overlap(ctx, s, done)
	}
	return false, fmt.Errorf("no driver for %s scripts", s.Scenario)
}

func (d *driver) reorder(ctx context.Context, s *Script, sent func()) (bool, error) {
	deesc, esc := s.Events[0], s.Events[1]
	if err := d.sendNow(ctx, deesc); err != nil {
		return false, err
	}
	_, tombstoned, err := d.waitGrant(ctx, esc.GrantID, time.Now().Add(stateWait), func(g grants.Grant) bool { return g.Tombstone })
	if err != nil {
		return false, err
	}
	sleep(ctx, s.Pause)
	if err := d.sendNow(ctx, esc); err != nil {
		return false, err
	}
	// Its last event is out: the wait for its result below holds up
	// nothing else (the killer stops 13 s after the last script's send).
	sent()
	if !tombstoned {
		d.note("reorder %s: no tombstone within %s of the deescalate", esc.GrantID, stateWait)
		return false, nil
	}
	// Long: a backlog may hold the escalate for a while, and the test waits
	// for the drain before it asks.
	code, err := d.waitResult(ctx, esc.SymID, time.Now().Add(2*time.Minute))
	if err == nil && code != events.CodeAlreadyRevoked {
		d.note("reorder %s: the late escalate's stored result is %q", esc.GrantID, code)
	}
	return code == events.CodeAlreadyRevoked, err
}

// waitResult reads the stored result of Sym event symID until there is one
// or deadline passes, and returns its rejection code ("" when none).
func (d *driver) waitResult(ctx context.Context, symID string, deadline time.Time) (events.Code, error) {
	for {
		out, err := d.aw.ddb.GetItem(ctx, &dynamodb.GetItemInput{TableName: &d.aw.stack.Table, ConsistentRead: aws.Bool(true),
			Key: map[string]ddbtypes.AttributeValue{"pk": &ddbtypes.AttributeValueMemberS{Value: "event#" + symID}}})
		if err != nil {
			return "", fmt.Errorf("get event %s: %w", symID, err)
		}
		if v, ok := out.Item["result"].(*ddbtypes.AttributeValueMemberS); ok {
			var res events.Result
			if err := json.Unmarshal([]byte(v.Value), &res); err != nil {
				return "", fmt.Errorf("decode result of %s: %w", symID, err)
			}
			return res.Code, nil
		}
		if !time.Now().Before(deadline) {
			return "", nil
		}
		if !sleep(ctx, time.Second) {
			return "", ctx.Err()
		}
	}
}

func (d *driver) overlap(ctx context.Context, s *Script, sent func()) (bool, error) {
	long, short := s.Events[0], s.Events[1]
	if err := d.sendNow(ctx, long); err != nil {
		return false, err
	}
	active := func(e *Event) func(grants.Grant) bool {
		return func(g grants.Grant) bool { return g.State == grants.StateActive && g.SymEventID == e.SymID }
	}
	began := time.Now()
	if _, ok, err := d.waitGrant(ctx, long.GrantID, minTime(long.Expires(), time.Now().Add(stateWait)), active(long)); err != nil || !ok {
		if err != nil {
			return false, err
		}
		d.note("overlap %s: long grant not ACTIVE within %s", long.GrantID, time.Since(began).Round(time.Second))
	}
	longActive := time.Since(began)
	sleep(ctx, s.Pause)
	// The short grant expires 10 s before the long one (room for a
	// lagging sweeper and for samples): as long as it can, so that a
	// backlogged queue still delivers it in time; a deescalate, if any,
	// ends it sooner.
	short.Duration = max(2, int64((time.Until(long.Expires())-10*time.Second)/time.Second))
	if err := d.sendNow(ctx, short); err != nil {
		return false, err
	}
	if len(s.Events) >= 3 {
		if _, _, err := d.waitGrant(ctx, short.GrantID, time.Now().Add(stateWait), active(short)); err != nil {
			return false, err
		}
		sleep(ctx, s.Pause)
		if err := d.sendNow(ctx, s.Events[2]); err != nil {
			return false, err
		}
	}
	if len(s.Events) < 4 {
		sent()
	}
	d.watch(ctx, long, short, len(s.Events) >= 3)
	// Judge it once the long grant is over, the way Check will: at its
	// expiry, or once its deescalate, sent now, has ended it.
	var lg grants.Grant
	if len(s.Events) == 4 {
		if err := d.sendNow(ctx, s.Events[3]); err != nil {
			return false, err
		}
		sent()
		g, _, err := d.waitGrant(ctx, long.GrantID, long.Expires().Add(stateWait), func(g grants.Grant) bool { return g.State != grants.StateActive })
		if err != nil {
			return false, err
		}
		lg = g
	} else {
		if !sleep(ctx, time.Until(long.Expires().Add(time.Second))) {
			return false, ctx.Err()
		}
		g, _, err := d.waitGrant(ctx, long.GrantID, time.Now(), func(grants.Grant) bool { return true })
		if err != nil {
			return false, err
		}
		lg = g
	}
	sg, _, err := d.waitGrant(ctx, short.GrantID, time.Now(), func(grants.Grant) bool { return true })
	if err != nil {
		return false, err
	}
	from, end, ok := OverlapWindow(lg, sg)
	samples := 0
	if ok {
		samples = len(SamplesWithin(d.mon.samples(), Place{long.Account, long.Group}, from, end))
	}
	if !ok || samples == 0 {
		d.note("overlap %s (%s of %s): long ACTIVE after %s, ends %s; short %s %s revoked %s (%s); window %s-%s, %d samples",
			long.GrantID, long.Group, long.Account, longActive.Round(100*time.Millisecond), lg.ExpiresAt.Format("15:04:05.0"), short.GrantID, sg.State,
			sg.RevokedAt.Format("15:04:05.0"), sg.RevokeReason, from.Format("15:04:05.0"), end.Format("15:04:05.0"), samples)
	}
	return ok && samples > 0, nil
}

// watch reads the short grant (from when it can have ended) until the
// overlap has happened and been sampled, and then tells d.overlapped; it
// gives up when the long grant ends.
func (d *driver) watch(ctx context.Context, long, short *Event, deescalated bool) {
	if d.overlapped == nil {
		return
	}
	if !deescalated && !sleep(ctx, time.Until(short.Expires())) {
		return
	}
	assumed := grants.Grant{ExpiresAt: long.Expires()} // nothing else ends it
	for time.Now().Before(long.Expires()) {
		if sg, err := d.aw.grant(ctx, short.GrantID); err == nil {
			if from, _, ok := OverlapWindow(assumed, sg); ok && len(SamplesWithin(d.mon.samples(), Place{long.Account, long.Group}, from, time.Now())) > 0 {
				d.overlapped(long.Account)
				return
			}
		}
		if !sleep(ctx, time.Second) {
			return
		}
	}
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// sendNow dates e now and puts its copies on the queue, the extra ones
// delayed.
func (d *driver) sendNow(ctx context.Context, e *Event) error {
	e.Stamp(time.Now())
	entries := []sqstypes.SendMessageBatchRequestEntry{{Id: aws.String("0"), MessageBody: aws.String(e.Body)}}
	for i, delay := range e.DupDelays {
		entries = append(entries, sqstypes.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i + 1)),
			MessageBody: aws.String(e.Body), DelaySeconds: delay})
	}
	out, err := d.aw.sqs.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: &d.aw.stack.QueueURL, Entries: entries})
	if err != nil {
		return fmt.Errorf("send %s: %w", e.SymID, err)
	}
	if len(out.Failed) > 0 {
		return fmt.Errorf("send %s: %s", e.SymID, aws.ToString(out.Failed[0].Message))
	}
	return nil
}

// waitGrant reads grant id (consistently) until ok says yes or deadline
// passes; it reads at least once. The bool reports whether ok said yes.
func (d *driver) waitGrant(ctx context.Context, id string, deadline time.Time, ok func(grants.Grant) bool) (grants.Grant, bool, error) {
	for {
		g, err := d.aw.grant(ctx, id)
		switch {
		case err == nil && ok(g):
			return g, true, nil
		case err != nil && !errors.Is(err, grants.ErrNotFound):
			return grants.Grant{}, false, err
		case !time.Now().Before(deadline):
			return g, false, nil
		}
		if !sleep(ctx, 500*time.Millisecond) {
			return grants.Grant{}, false, ctx.Err()
		}
	}
}

// grant reads one grant item.
func (a *awsClients) grant(ctx context.Context, id string) (grants.Grant, error) {
	out, err := a.ddb.GetItem(ctx, &dynamodb.GetItemInput{TableName: &a.stack.Table, ConsistentRead: aws.Bool(true),
		Key: map[string]ddbtypes.AttributeValue{"pk": &ddbtypes.AttributeValueMemberS{Value: "grant#" + id}}})
	if err != nil {
		return grants.Grant{}, fmt.Errorf("get grant %s: %w", id, err)
	}
	if len(out.Item) == 0 {
		return grants.Grant{}, grants.ErrNotFound
	}
	var it grantItem
	if err := attributevalue.UnmarshalMap(out.Item, &it); err != nil {
		return grants.Grant{}, fmt.Errorf("decode grant %s: %w", id, err)
	}
	return it.grant(), nil
}

// waitGranted waits until every escalate of sends has been granted (its
// grant has a granted_at), or deadline passes; it returns how many were.
func (a *awsClients) waitGranted(ctx context.Context, sends []Send, deadline time.Time) (int, error) {
	for {
		n, want := 0, 0
		seen := map[string]bool{}
		for _, s := range sends {
			if s.Event.Type != TypeEsc || seen[s.Event.GrantID] {
				continue
			}
			seen[s.Event.GrantID] = true
			want++
			g, err := a.grant(ctx, s.Event.GrantID)
			switch {
			case err == nil && !g.GrantedAt.IsZero():
				n++
			case err != nil && !errors.Is(err, grants.ErrNotFound):
				return n, err
			}
		}
		if n == want || !time.Now().Before(deadline) {
			return n, nil
		}
		if !sleep(ctx, 500*time.Millisecond) {
			return n, ctx.Err()
		}
	}
}
