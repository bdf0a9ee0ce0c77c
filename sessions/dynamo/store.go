// Package dynamo is the sessions.Store, in the grants table (the same one
// grants/dynamo uses), as a new item kind:
//
//	pk        role#<role arn>
//	kind      "role"
//	role_arn, role_name
//	u#<iam user>  revocation time of that user's membership (fixed-width UTC)
//	token     replaced by every Add (the protocol's token)
//	version   counts writes
//	due_pk    SESSIONS_DIRTY while IAM may not hold what the item says,
//	          SESSIONS once it does
//	due_at    SESSIONS_DIRTY: time of the last write; SESSIONS: when the
//	          oldest entry stops denying anything (the sweeper prunes then)
//	ttl       cleans an item forgotten for longer than any session lives
//
// Users are top-level attributes, not a map, so that one UpdateItem can add
// a user to an item that does not exist yet, and remove one, without
// rewriting the others.
package dynamo

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	gdynamo "github.com/iamjit/iamjit/grants/dynamo"
	"github.com/iamjit/iamjit/sessions"
)

// indexName is the table's due-work index, shared with the grants.
const indexName = gdynamo.IndexName

const (
	dueDirty = "SESSIONS_DIRTY"
	dueClean = "SESSIONS"
	userAttr = "u#"
	// itemTTL outlives IAM's longest session (12 h) with a day to spare.
	itemTTL = 36 * time.Hour
)

// API is the part of the DynamoDB client the store uses.
type API interface {
	GetItem(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	UpdateItem(context.Context, *dynamodb.UpdateItemInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	DeleteItem(context.Context, *dynamodb.DeleteItemInput, ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	Query(context.Context, *dynamodb.QueryInput, ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
}

// Store implements sessions.Store.
type Store struct {
	db    API
	table string
	now   func() time.Time
}

// New returns a Store on table.
func New(db API, table string, now func() time.Time) *Store {
	return &Store{db: db, table: table, now: now}
}

var _ sessions.Store = (*Store)(nil)

const timeFormat = gdynamo.TimeFormat // the due index orders both stores' items

func ts(t time.Time) string { return t.UTC().Format(timeFormat) }

func roleKey(arn string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"pk": str("role#" + arn)}
}

func str(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }

// Add implements sessions.Store.
func (s *Store) Add(ctx context.Context, role sessions.Role, user string, at time.Time, token string) error {
	vals := map[string]types.AttributeValue{":arn": str(role.ARN), ":name": str(role.Name), ":kind": str("role")}
	err := s.add(ctx, roleKey(role.ARN), dueDirty, "#kind = :kind, role_arn = :arn, role_name = :name", nil, vals, userAttr+user, at, token)
	if err != nil {
		return fmt.Errorf("add %s to role item %s: %w", user, role.ARN, err)
	}
	return nil
}

// add is one write of the item protocol: entry (an attribute) takes at
// unless a later time is recorded, the item takes token, is marked dirty in
// partition dirty and lives on; set, names and vals add the kind's own
// attributes.
func (s *Store) add(ctx context.Context, key map[string]types.AttributeValue, dirty, set string, names map[string]string, vals map[string]types.AttributeValue, entry string, at time.Time, token string) error {
	now := s.now()
	names = maps.Clone(names)
	if names == nil {
		names = map[string]string{}
	}
	names["#tok"], names["#ttl"], names["#kind"] = "token", "ttl", "kind"
	vals = maps.Clone(vals)
	vals[":tok"], vals[":dirty"], vals[":now"], vals[":one"] = str(token), str(dirty), str(ts(now)), &types.AttributeValueMemberN{Value: "1"}
	vals[":ttl"] = &types.AttributeValueMemberN{Value: strconv.FormatInt(now.Add(itemTTL).Unix(), 10)}
	base := "SET " + set + ", #tok = :tok, due_pk = :dirty, due_at = :now, #ttl = :ttl"
	in := &dynamodb.UpdateItemInput{
		TableName: &s.table, Key: key,
		UpdateExpression:    aws.String(base + ", #u = :at ADD version :one"),
		ConditionExpression: aws.String("attribute_not_exists(#u) OR #u < :at"),
	}
	in.ExpressionAttributeNames = map[string]string{"#u": entry}
	for k, v := range names {
		in.ExpressionAttributeNames[k] = v
	}
	in.ExpressionAttributeValues = map[string]types.AttributeValue{":at": str(ts(at))}
	for k, v := range vals {
		in.ExpressionAttributeValues[k] = v
	}
	_, err := s.db.UpdateItem(ctx, in)
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		// A later revocation of this entry is recorded already: keep it, but
		// still take the token, so this writer's render is the one that must
		// reach AWS.
		_, err = s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName: &s.table, Key: key,
			UpdateExpression:          aws.String(base + " ADD version :one"),
			ExpressionAttributeNames:  names,
			ExpressionAttributeValues: vals,
		})
	}
	return err
}

// Get implements sessions.Store.
func (s *Store) Get(ctx context.Context, arn string) (sessions.RoleState, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.table, Key: roleKey(arn), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return sessions.RoleState{}, fmt.Errorf("get role item %s: %w", arn, err)
	}
	if len(out.Item) == 0 {
		return sessions.RoleState{ARN: arn, Users: map[string]time.Time{}}, nil
	}
	return decode(out.Item)
}

func decode(item map[string]types.AttributeValue) (sessions.RoleState, error) {
	st := sessions.RoleState{Users: map[string]time.Time{}}
	get := func(k string) string {
		if v, ok := item[k].(*types.AttributeValueMemberS); ok {
			return v.Value
		}
		return ""
	}
	st.ARN, st.Name, st.Token, st.Dirty = get("role_arn"), get("role_name"), get("token"), get("due_pk") == dueDirty
	for k := range item {
		if user, ok := strings.CutPrefix(k, userAttr); ok {
			t, err := time.Parse(timeFormat, get(k))
			if err != nil {
				return st, fmt.Errorf("role item %s: entry %s: %w", st.ARN, user, err)
			}
			st.Users[user] = t
		}
	}
	return st, nil
}

// Synced implements sessions.Store.
func (s *Store) Synced(ctx context.Context, arn, token string, drop []string, remaining int, prune time.Time) (bool, error) {
	var attrs []string
	for _, u := range drop {
		attrs = append(attrs, userAttr+u)
	}
	ok, err := s.synced(ctx, roleKey(arn), dueClean, "#tok = :tok", nil, map[string]types.AttributeValue{":tok": str(token)}, attrs, remaining, prune)
	if err != nil {
		return false, fmt.Errorf("mark role item %s synced: %w", arn, err)
	}
	return ok, nil
}

// synced is the protocol's other write: only if cond holds (the token, and
// whatever the kind adds), remove the attributes drop, mark the item clean
// in partition clean, due at prune, or delete it when remaining is 0.
func (s *Store) synced(ctx context.Context, key map[string]types.AttributeValue, clean, cond string, names map[string]string, vals map[string]types.AttributeValue, drop []string, remaining int, prune time.Time) (bool, error) {
	names = maps.Clone(names)
	if names == nil {
		names = map[string]string{}
	}
	names["#tok"] = "token"
	vals = maps.Clone(vals)
	var err error
	if remaining == 0 {
		_, err = s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &s.table, Key: key,
			ConditionExpression: &cond, ExpressionAttributeNames: names, ExpressionAttributeValues: vals})
	} else {
		expr := "SET due_pk = :clean, due_at = :prune"
		vals[":clean"], vals[":prune"] = str(clean), str(ts(prune))
		for i, a := range drop {
			n := "#d" + strconv.Itoa(i)
			names[n] = a
			if i == 0 {
				expr += " REMOVE " + n
			} else {
				expr += ", " + n
			}
		}
		_, err = s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: &s.table, Key: key,
			UpdateExpression: &expr, ConditionExpression: &cond,
			ExpressionAttributeNames: names, ExpressionAttributeValues: vals})
	}
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, nil
}

// Due implements sessions.Store.
func (s *Store) Due(ctx context.Context, dirtyBefore, now time.Time, limit int32) ([]sessions.RoleState, error) {
	dirty, err := query(ctx, s, dueDirty, dirtyBefore, limit, decode)
	if err != nil || now.IsZero() {
		return dirty, err
	}
	clean, err := query(ctx, s, dueClean, now, limit, decode)
	if err != nil {
		return nil, err
	}
	return append(dirty, clean...), nil
}

// All implements sessions.Store: every role item, through the index (never
// a table scan).
func (s *Store) All(ctx context.Context) ([]sessions.RoleState, error) {
	far := time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
	dirty, err := query(ctx, s, dueDirty, far, 0, decode)
	if err != nil {
		return nil, err
	}
	clean, err := query(ctx, s, dueClean, far, 0, decode)
	if err != nil {
		return nil, err
	}
	return append(dirty, clean...), nil
}

// query reads one partition of the index up to upTo; limit 0 reads it all.
func query[T any](ctx context.Context, s *Store, partition string, upTo time.Time, limit int32, decode func(map[string]types.AttributeValue) (T, error)) ([]T, error) {
	in := &dynamodb.QueryInput{
		TableName: &s.table, IndexName: aws.String(indexName),
		KeyConditionExpression: aws.String("due_pk = :p AND due_at <= :t"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":p": str(partition), ":t": str(ts(upTo)),
		},
	}
	if limit > 0 {
		in.Limit = aws.Int32(limit)
	}
	var out []T
	p := dynamodb.NewQueryPaginator(s.db, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("query %s in the %s index: %w", partition, indexName, err)
		}
		for _, item := range page.Items {
			st, err := decode(item)
			if err != nil {
				return nil, err
			}
			out = append(out, st)
		}
		if limit > 0 {
			break // one page is a sweep's batch
		}
	}
	return out, nil
}
