package dynamo

// Permission set items, beside the role items and never mistaken for them
// (another key prefix, other due partitions):
//
//	pk        ps#<permission set arn>
//	kind      "permission_set"
//	ps_arn
//	u#<account>/<identity store user id>  revocation time (fixed-width UTC)
//	a#<account>   present while the account may not be provisioned with
//	              what the policy holds (sessions.SetState.Pending)
//	lease_owner, lease_until  the one writer allowed to put and provision
//	token, version, due_pk (PS_SESSIONS_DIRTY / PS_SESSIONS), due_at, ttl
//	          as for roles

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/iamjit/iamjit/sessions"
)

const (
	setDirty    = "PS_SESSIONS_DIRTY"
	setClean    = "PS_SESSIONS"
	pendingAttr = "a#"
)

var _ sessions.SetStore = (*Store)(nil)

func setKey(arn string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"pk": str("ps#" + arn)}
}

func entryAttr(e sessions.Entry) string { return userAttr + e.Account + "/" + e.User }

// AddEntry implements sessions.SetStore.
func (s *Store) AddEntry(ctx context.Context, arn string, e sessions.Entry, at time.Time, token string) error {
	names := map[string]string{"#pend": pendingAttr + e.Account}
	vals := map[string]types.AttributeValue{":arn": str(arn), ":kind": str("permission_set"), ":yes": str("1")}
	if err := s.add(ctx, setKey(arn), setDirty, "#kind = :kind, ps_arn = :arn, #pend = :yes", names, vals, entryAttr(e), at, token); err != nil {
		return fmt.Errorf("add %s in %s to permission set item %s: %w", e.User, e.Account, arn, err)
	}
	return nil
}

// GetSet implements sessions.SetStore.
func (s *Store) GetSet(ctx context.Context, arn string) (sessions.SetState, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.table, Key: setKey(arn), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return sessions.SetState{}, fmt.Errorf("get permission set item %s: %w", arn, err)
	}
	if len(out.Item) == 0 {
		return sessions.SetState{ARN: arn, Entries: map[sessions.Entry]time.Time{}}, nil
	}
	return decodeSet(out.Item)
}

func decodeSet(item map[string]types.AttributeValue) (sessions.SetState, error) {
	st := sessions.SetState{Entries: map[sessions.Entry]time.Time{}}
	get := func(k string) string {
		if v, ok := item[k].(*types.AttributeValueMemberS); ok {
			return v.Value
		}
		return ""
	}
	st.ARN, st.Token, st.Dirty = get("ps_arn"), get("token"), get("due_pk") == setDirty
	if until := get("lease_until"); until != "" {
		t, err := time.Parse(timeFormat, until)
		if err != nil {
			return st, fmt.Errorf("permission set item %s: lease_until: %w", st.ARN, err)
		}
		st.LeasedUntil = t
	}
	for k := range item {
		if acct, ok := strings.CutPrefix(k, pendingAttr); ok {
			st.Pending = append(st.Pending, acct)
		}
		rest, ok := strings.CutPrefix(k, userAttr)
		if !ok {
			continue
		}
		acct, user, ok := strings.Cut(rest, "/")
		if !ok {
			return st, fmt.Errorf("permission set item %s: entry %s has no account", st.ARN, k)
		}
		t, err := time.Parse(timeFormat, get(k))
		if err != nil {
			return st, fmt.Errorf("permission set item %s: entry %s: %w", st.ARN, k, err)
		}
		st.Entries[sessions.Entry{User: user, Account: acct}] = t
	}
	return st, nil
}

// Lease implements sessions.SetStore.
func (s *Store) Lease(ctx context.Context, arn, owner string, until, now time.Time) (bool, error) {
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: &s.table, Key: setKey(arn),
		UpdateExpression:    aws.String("SET lease_owner = :me, lease_until = :until"),
		ConditionExpression: aws.String("attribute_exists(pk) AND (attribute_not_exists(lease_owner) OR lease_owner = :me OR lease_until < :now)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":me": str(owner), ":until": str(ts(until)), ":now": str(ts(now))}})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("lease permission set item %s: %w", arn, err)
	}
	return true, nil
}

// Release implements sessions.SetStore.
func (s *Store) Release(ctx context.Context, arn, owner string) error {
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: &s.table, Key: setKey(arn),
		UpdateExpression:          aws.String("REMOVE lease_owner, lease_until"),
		ConditionExpression:       aws.String("lease_owner = :me"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":me": str(owner)}})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return nil // not ours any more
	}
	if err != nil {
		return fmt.Errorf("release permission set item %s: %w", arn, err)
	}
	return nil
}

// SyncedSet implements sessions.SetStore.
func (s *Store) SyncedSet(ctx context.Context, arn, token, owner string, drop []sessions.Entry, provisioned []string, remaining int, prune time.Time) (bool, error) {
	attrs := []string{"lease_owner", "lease_until"}
	for _, e := range drop {
		attrs = append(attrs, entryAttr(e))
	}
	for _, a := range provisioned {
		attrs = append(attrs, pendingAttr+a)
	}
	ok, err := s.synced(ctx, setKey(arn), setClean, "#tok = :tok AND lease_owner = :me", nil,
		map[string]types.AttributeValue{":tok": str(token), ":me": str(owner)}, attrs, remaining, prune)
	if err != nil {
		return false, fmt.Errorf("mark permission set item %s synced: %w", arn, err)
	}
	return ok, nil
}

// DueSets implements sessions.SetStore.
func (s *Store) DueSets(ctx context.Context, dirtyBefore, now time.Time, limit int32) ([]sessions.SetState, error) {
	dirty, err := query(ctx, s, setDirty, dirtyBefore, limit, decodeSet)
	if err != nil || now.IsZero() {
		return dirty, err
	}
	clean, err := query(ctx, s, setClean, now, limit, decodeSet)
	if err != nil {
		return nil, err
	}
	return append(dirty, clean...), nil
}

// AllSets implements sessions.SetStore: through the index, never a scan.
func (s *Store) AllSets(ctx context.Context) ([]sessions.SetState, error) {
	far := time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
	return s.DueSets(ctx, far, far, 0)
}
