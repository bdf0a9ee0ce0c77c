// Package dynamo is the grants.Store on one DynamoDB table.
//
// Items, all keyed by the string attribute pk:
//   - grant#<grant id>: a grant and its history; in the "due" index under
//     due_pk=EXPIRY, due_at=<expiry> while it still needs the sweeper;
//   - member#<iam user>#<group> (home account) or
//     member#<account id>#<iam user>#<group> (a member account; IAM names
//     have no "#", so the two never meet). The home account is written
//     without its id, as before there were accounts: tables from then need
//     no migration. Only the store knows this; everything above it names
//     every account by its id. An Identity Center membership is
//     member#<kind>#<account id>#<user id>#<permission set ARN or group id>
//     with a target_type attribute (absent: an IAM group): the set of active grant ids, a
//     token that every write replaces and a version; in the "due" index
//     under due_pk=DIRTY, due_at=<last write> until IAM is known to agree;
//   - event#<sym id>: the result of a processed Sym event.
//
// Every item has a ttl (epoch seconds) for DynamoDB to clean history; TTL
// never decides access.
package dynamo

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/iamjit/iamjit/grants"
)

// IndexName is the global secondary index of due work.
const IndexName = "due"

// TableInput creates the table the store, and the session store beside it,
// run on: hash key pk and the due index (due_pk, due_at), on demand. Time
// to live on ttl is switched on apart (UpdateTimeToLive): CreateTable cannot.
func TableInput(name string) *dynamodb.CreateTableInput {
	return &dynamodb.CreateTableInput{
		TableName: aws.String(name), BillingMode: types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String("pk"), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String("due_pk"), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String("due_at"), AttributeType: types.ScalarAttributeTypeS},
		},
		KeySchema: []types.KeySchemaElement{{AttributeName: aws.String("pk"), KeyType: types.KeyTypeHash}},
		GlobalSecondaryIndexes: []types.GlobalSecondaryIndex{{
			IndexName: aws.String(IndexName),
			KeySchema: []types.KeySchemaElement{
				{AttributeName: aws.String("due_pk"), KeyType: types.KeyTypeHash},
				{AttributeName: aws.String("due_at"), KeyType: types.KeyTypeRange},
			},
			Projection: &types.Projection{ProjectionType: types.ProjectionTypeAll},
		}},
	}
}

const (
	dueExpiry = "EXPIRY"
	dueDirty  = "DIRTY"
	// dueRecheck queues a removed membership for its read-back (a late
	// add), due RecheckAfter after the removal.
	dueRecheck = "RECHECK"
	// eventTTL outlives SQS's 14-day retention twice: a message can sit 14
	// days in the queue and, moved by iamjit, 14 more in the DLQ.
	eventTTL = 30 * 24 * time.Hour
)

// API is the part of the DynamoDB client the store uses.
type API interface {
	GetItem(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(context.Context, *dynamodb.PutItemInput, ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(context.Context, *dynamodb.UpdateItemInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	Query(context.Context, *dynamodb.QueryInput, ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	Scan(context.Context, *dynamodb.ScanInput, ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
	TransactWriteItems(context.Context, *dynamodb.TransactWriteItemsInput, ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
	DescribeTable(context.Context, *dynamodb.DescribeTableInput, ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
}

// Store implements grants.Store.
type Store struct {
	db        API
	table     string
	retention time.Duration
	now       func() time.Time
	// home is the home account's id: its grants and memberships are stored
	// without an account (see the package comment).
	home string
	// RecheckAfter is how long after a removal its read-back is due
	// (IAMJIT_READBACK_DELAY); 0 queues no read-back.
	RecheckAfter time.Duration
}

// New returns a Store on table. retention is how long a grant's history is
// kept after it ends; home is the home account's id ("" when unknown).
func New(db API, table string, retention time.Duration, now func() time.Time, home string) *Store {
	return &Store{db: db, table: table, retention: retention, now: now, home: home}
}

// stored is how an account id is written: the home account as "" (absent).
func (s *Store) stored(account string) string {
	if account == s.home {
		return ""
	}
	return account
}

// loaded is the account id of what was read: absent is the home account.
func (s *Store) loaded(account string) string { return cmp.Or(account, s.home) }

// grantItem is a grant as stored.
type grantItem struct {
	PK            string              `dynamodbav:"pk"`
	Kind          string              `dynamodbav:"kind"`
	ID            string              `dynamodbav:"id"`
	State         grants.State        `dynamodbav:"state"`
	TargetType    grants.Kind         `dynamodbav:"target_type,omitempty"` // absent: an IAM group
	Account       string              `dynamodbav:"account,omitempty"`     // absent: the home account
	SymEventID    string              `dynamodbav:"sym_event_id,omitempty"`
	RevokeEventID string              `dynamodbav:"revoke_event_id,omitempty"`
	RunSRN        string              `dynamodbav:"run_srn,omitempty"`
	Requester     string              `dynamodbav:"requester,omitempty"`
	IAMUser       string              `dynamodbav:"iam_user,omitempty"`
	Group         string              `dynamodbav:"grp,omitempty"`
	GroupARN      string              `dynamodbav:"group_arn,omitempty"`
	Approver      string              `dynamodbav:"approver,omitempty"`
	Reason        string              `dynamodbav:"reason,omitempty"`
	GrantedAt     string              `dynamodbav:"granted_at,omitempty"`
	ExpiresAt     string              `dynamodbav:"expires_at,omitempty"`
	RevokedAt     string              `dynamodbav:"revoked_at,omitempty"`
	RevokeReason  string              `dynamodbav:"revoke_reason,omitempty"`
	Tombstone     bool                `dynamodbav:"tombstone,omitempty"`
	History       []grants.Transition `dynamodbav:"history"`
	DuePK         string              `dynamodbav:"due_pk,omitempty"`
	DueAt         string              `dynamodbav:"due_at,omitempty"`
	TTL           int64               `dynamodbav:"ttl"`
}

type memberItem struct {
	PK         string      `dynamodbav:"pk"`
	TargetType grants.Kind `dynamodbav:"target_type,omitempty"` // absent: an IAM group
	Account    string      `dynamodbav:"account,omitempty"`     // absent: the home account
	IAMUser    string      `dynamodbav:"iam_user"`
	Group      string      `dynamodbav:"grp"`
	Grants     []string    `dynamodbav:"grants,stringset,omitempty"`
	Token      string      `dynamodbav:"token"`
	Version    int64       `dynamodbav:"version"`
	DuePK      string      `dynamodbav:"due_pk,omitempty"`
}

func (s *Store) membership(it memberItem) grants.Membership {
	return grants.Membership{Kind: it.TargetType, Account: s.loaded(it.Account), IAMUser: it.IAMUser, Group: it.Group, GrantIDs: it.Grants, Token: it.Token, Dirty: it.DuePK == dueDirty}
}

type eventItem struct {
	PK      string `dynamodbav:"pk"`
	Kind    string `dynamodbav:"kind"`
	SymID   string `dynamodbav:"sym_event_id"`
	GrantID string `dynamodbav:"grant_id,omitempty"`
	Result  string `dynamodbav:"result"` // the result event's detail, JSON
	At      string `dynamodbav:"at"`
	TTL     int64  `dynamodbav:"ttl"`
}

func grantKey(id string) string { return "grant#" + id }

// memberKey keeps the home account's keys as they were before accounts
// existed: tables written then need no migration.
func (s *Store) memberKey(k grants.Key) string {
	if k.Kind != grants.IAMGroup {
		return "member#" + string(k.Kind) + "#" + k.Account + "#" + k.User + "#" + k.Group
	}
	if acct := s.stored(k.Account); acct != "" {
		return "member#" + acct + "#" + k.User + "#" + k.Group
	}
	return "member#" + k.User + "#" + k.Group
}
func eventKey(symID string) string { return "event#" + symID }
func key(pk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: pk}}
}

// TimeFormat is how every time in the table is written: fixed-width, so
// that the due index's order is time order. The session store's role items
// share that index and write their times in it too.
const TimeFormat = "2006-01-02T15:04:05.000Z"

func ts(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(TimeFormat)
}

func parseTS(s string) time.Time {
	t, _ := time.Parse(TimeFormat, s)
	return t
}

// GrantItem is the item the store writes for g, kept the store's retention
// after g ends: for tools that seed a table directly (tools/bench).
func (s *Store) GrantItem(g grants.Grant) (map[string]types.AttributeValue, error) {
	return attributevalue.MarshalMap(s.toItem(g))
}

func (s *Store) toItem(g grants.Grant) grantItem {
	retention := s.retention
	end := g.ExpiresAt
	if !g.RevokedAt.IsZero() {
		end = g.RevokedAt
	}
	it := grantItem{
		PK: grantKey(g.ID), Kind: "grant", ID: g.ID, State: g.State, TargetType: g.Kind, Account: s.stored(g.Account), SymEventID: g.SymEventID,
		RevokeEventID: g.RevokeEventID, RunSRN: g.RunSRN, Requester: g.Requester, IAMUser: g.IAMUser,
		Group: g.Group, GroupARN: g.GroupARN, Approver: g.Approver, Reason: g.Reason,
		GrantedAt: ts(g.GrantedAt), ExpiresAt: ts(g.ExpiresAt), RevokedAt: ts(g.RevokedAt),
		RevokeReason: g.RevokeReason, Tombstone: g.Tombstone, History: g.History,
		TTL: end.Add(retention).Unix(),
	}
	if it.History == nil {
		it.History = []grants.Transition{}
	}
	if g.State == grants.StateActive {
		it.DuePK, it.DueAt = dueExpiry, ts(g.ExpiresAt)
	}
	return it
}

func (s *Store) fromItem(it grantItem) grants.Grant {
	return grants.Grant{
		ID: it.ID, State: it.State, Kind: it.TargetType, Account: s.loaded(it.Account), SymEventID: it.SymEventID, RevokeEventID: it.RevokeEventID,
		RunSRN: it.RunSRN, Requester: it.Requester, IAMUser: it.IAMUser, Group: it.Group,
		GroupARN: it.GroupARN, Approver: it.Approver, Reason: it.Reason,
		GrantedAt: parseTS(it.GrantedAt), ExpiresAt: parseTS(it.ExpiresAt), RevokedAt: parseTS(it.RevokedAt),
		RevokeReason: it.RevokeReason, Tombstone: it.Tombstone, History: it.History,
	}
}

func (s *Store) eventPut(ev grants.ProcessedEvent) (*types.Put, error) {
	body, err := json.Marshal(ev.Result)
	if err != nil {
		return nil, err
	}
	av, err := attributevalue.MarshalMap(eventItem{
		PK: eventKey(ev.SymEventID), Kind: "event", SymID: ev.SymEventID, GrantID: ev.GrantID,
		Result: string(body), At: ts(ev.At), TTL: ev.At.Add(eventTTL).Unix(),
	})
	if err != nil {
		return nil, err
	}
	return &types.Put{
		TableName: &s.table, Item: av,
		ConditionExpression:                 aws.String("attribute_not_exists(pk)"),
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}, nil
}

// memberUpdate changes the set of membership k and marks it dirty with a
// fresh token. op is ADD or DELETE.
func (s *Store) memberUpdate(k grants.Key, grantID, op, token string) *types.Update {
	set := " SET iam_user = :u, grp = :grp, #tok = :tok, due_pk = :dirty, due_at = :now"
	vals := map[string]types.AttributeValue{
		":g":     &types.AttributeValueMemberSS{Value: []string{grantID}},
		":u":     &types.AttributeValueMemberS{Value: k.User},
		":grp":   &types.AttributeValueMemberS{Value: k.Group},
		":tok":   &types.AttributeValueMemberS{Value: token},
		":dirty": &types.AttributeValueMemberS{Value: dueDirty},
		":now":   &types.AttributeValueMemberS{Value: ts(s.now())},
		":one":   &types.AttributeValueMemberN{Value: "1"},
	}
	names := map[string]string{"#tok": "token"}
	if acct := s.stored(k.Account); acct != "" {
		set += ", #acct = :acct"
		vals[":acct"] = &types.AttributeValueMemberS{Value: acct}
		names["#acct"] = "account"
	}
	if k.Kind != grants.IAMGroup {
		set += ", target_type = :tt"
		vals[":tt"] = &types.AttributeValueMemberS{Value: string(k.Kind)}
	}
	expr := "ADD grants :g, version :one" + set // one ADD clause per expression
	if op == "DELETE" {
		expr = "DELETE grants :g ADD version :one" + set
	}
	return &types.Update{
		TableName:                 &s.table,
		Key:                       key(s.memberKey(k)),
		UpdateExpression:          aws.String(expr),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: vals,
	}
}

// Activate implements grants.Store.
func (s *Store) Activate(ctx context.Context, g grants.Grant, ev grants.ProcessedEvent, token string) error {
	av, err := s.GrantItem(g)
	if err != nil {
		return fmt.Errorf("marshal grant: %w", err)
	}
	evPut, err := s.eventPut(ev)
	if err != nil {
		return fmt.Errorf("marshal event: %w", err)
	}
	items := []types.TransactWriteItem{
		{Put: &types.Put{TableName: &s.table, Item: av,
			ConditionExpression:                 aws.String("attribute_not_exists(pk) OR #st = :failed"),
			ExpressionAttributeNames:            map[string]string{"#st": "state"},
			ExpressionAttributeValues:           map[string]types.AttributeValue{":failed": &types.AttributeValueMemberS{Value: string(grants.StateFailed)}},
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld}},
		{Update: s.memberUpdate(g.Key(), g.ID, "ADD", token)},
		{Put: evPut},
	}
	return s.transact(ctx, items, map[int]string{0: g.ID}, map[int]string{2: ev.SymEventID})
}

// Revoke implements grants.Store.
func (s *Store) Revoke(ctx context.Context, g grants.Grant, ev *grants.ProcessedEvent, token string, keepDue bool) error {
	h, err := attributevalue.Marshal([]grants.Transition{{At: g.RevokedAt, Action: "revoke", State: grants.StateRevoked, SymEventID: g.RevokeEventID, Note: g.RevokeReason}})
	if err != nil {
		return fmt.Errorf("marshal history: %w", err)
	}
	expr := "SET #st = :revoked, revoked_at = :at, revoke_reason = :why, revoke_event_id = :ev, #ttl = :ttl, history = list_append(if_not_exists(history, :empty), :h)"
	if !keepDue {
		expr += " REMOVE due_pk, due_at"
	}
	items := []types.TransactWriteItem{
		{Update: &types.Update{
			TableName: &s.table, Key: key(grantKey(g.ID)), UpdateExpression: &expr,
			ConditionExpression:      aws.String("#st = :active"),
			ExpressionAttributeNames: map[string]string{"#st": "state", "#ttl": "ttl"},
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":revoked": &types.AttributeValueMemberS{Value: string(grants.StateRevoked)},
				":active":  &types.AttributeValueMemberS{Value: string(grants.StateActive)},
				":at":      &types.AttributeValueMemberS{Value: ts(g.RevokedAt)},
				":why":     &types.AttributeValueMemberS{Value: g.RevokeReason},
				":ev":      &types.AttributeValueMemberS{Value: g.RevokeEventID},
				":ttl":     &types.AttributeValueMemberN{Value: strconv.FormatInt(g.RevokedAt.Add(s.retention).Unix(), 10)},
				":empty":   &types.AttributeValueMemberL{Value: []types.AttributeValue{}},
				":h":       h,
			},
		}},
		{Update: s.memberUpdate(g.Key(), g.ID, "DELETE", token)},
	}
	events := map[int]string{}
	if ev != nil {
		evPut, err := s.eventPut(*ev)
		if err != nil {
			return fmt.Errorf("marshal event: %w", err)
		}
		items = append(items, types.TransactWriteItem{Put: evPut})
		events[2] = ev.SymEventID
	}
	err = s.transact(ctx, items, nil, events)
	var conflict *grants.ConflictError
	if errors.As(err, &conflict) {
		return err
	}
	var tce *types.TransactionCanceledException
	if errors.As(err, &tce) && failedAt(tce, 0) {
		return grants.ErrNotActive
	}
	return err
}

// Fail implements grants.Store.
func (s *Store) Fail(ctx context.Context, g grants.Grant, token string) error {
	h, err := attributevalue.Marshal([]grants.Transition{{At: g.RevokedAt, Action: "fail", State: grants.StateFailed, SymEventID: g.SymEventID}})
	if err != nil {
		return fmt.Errorf("marshal history: %w", err)
	}
	items := []types.TransactWriteItem{
		{Update: &types.Update{
			TableName: &s.table, Key: key(grantKey(g.ID)),
			UpdateExpression:         aws.String("SET #st = :failed, revoked_at = :at, revoke_reason = :why, #ttl = :ttl, history = list_append(if_not_exists(history, :empty), :h) REMOVE due_pk, due_at"),
			ConditionExpression:      aws.String("#st = :active AND sym_event_id = :ev"),
			ExpressionAttributeNames: map[string]string{"#st": "state", "#ttl": "ttl"},
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":failed": &types.AttributeValueMemberS{Value: string(grants.StateFailed)},
				":active": &types.AttributeValueMemberS{Value: string(grants.StateActive)},
				":ev":     &types.AttributeValueMemberS{Value: g.SymEventID},
				":at":     &types.AttributeValueMemberS{Value: ts(g.RevokedAt)},
				":why":    &types.AttributeValueMemberS{Value: g.RevokeReason},
				":ttl":    &types.AttributeValueMemberN{Value: strconv.FormatInt(g.RevokedAt.Add(s.retention).Unix(), 10)},
				":empty":  &types.AttributeValueMemberL{Value: []types.AttributeValue{}},
				":h":      h,
			},
		}},
		{Update: s.memberUpdate(g.Key(), g.ID, "DELETE", token)},
		{Delete: &types.Delete{TableName: &s.table, Key: key(eventKey(g.SymEventID))}},
	}
	_, err = s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
	var tce *types.TransactionCanceledException
	if errors.As(err, &tce) && failedAt(tce, 0) {
		return grants.ErrNotActive
	}
	if err != nil {
		return fmt.Errorf("fail grant %s: %w", g.ID, err)
	}
	return nil
}

// Tombstone implements grants.Store.
func (s *Store) Tombstone(ctx context.Context, g grants.Grant, ev grants.ProcessedEvent) error {
	it := s.toItem(g)
	// Keep the tombstone at least as long as a late escalate can arrive.
	if min := g.RevokedAt.Add(eventTTL + s.retention).Unix(); it.TTL < min {
		it.TTL = min
	}
	av, err := attributevalue.MarshalMap(it)
	if err != nil {
		return fmt.Errorf("marshal grant: %w", err)
	}
	evPut, err := s.eventPut(ev)
	if err != nil {
		return fmt.Errorf("marshal event: %w", err)
	}
	items := []types.TransactWriteItem{
		{Put: &types.Put{TableName: &s.table, Item: av,
			ConditionExpression:                 aws.String("attribute_not_exists(pk)"),
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld}},
		{Put: evPut},
	}
	return s.transact(ctx, items, map[int]string{0: g.ID}, map[int]string{1: ev.SymEventID})
}

// transact runs items and turns a failed condition on a grant put or event
// put into a *grants.ConflictError carrying the existing item.
func (s *Store) transact(ctx context.Context, items []types.TransactWriteItem, grantAt, eventAt map[int]string) error {
	_, err := s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
	var tce *types.TransactionCanceledException
	if !errors.As(err, &tce) {
		if err != nil {
			return fmt.Errorf("transact write: %w", err)
		}
		return nil
	}
	for i, symID := range eventAt {
		if failedAt(tce, i) {
			ev, gerr := s.eventFrom(ctx, tce.CancellationReasons[i].Item, symID)
			if gerr != nil {
				return gerr
			}
			return &grants.ConflictError{Event: &ev}
		}
	}
	for i, id := range grantAt {
		if failedAt(tce, i) {
			g, gerr := s.grantFrom(ctx, tce.CancellationReasons[i].Item, id)
			if gerr != nil {
				return gerr
			}
			return &grants.ConflictError{Grant: &g}
		}
	}
	return fmt.Errorf("transact write: %w", err)
}

func failedAt(tce *types.TransactionCanceledException, i int) bool {
	return i < len(tce.CancellationReasons) && aws.ToString(tce.CancellationReasons[i].Code) == "ConditionalCheckFailed"
}

// oldItem decodes the old item a failed condition returned, reading the item
// pk when the service did not return it.
func oldItem[T any](ctx context.Context, s *Store, item map[string]types.AttributeValue, pk, what string) (T, error) {
	var it T
	if len(item) == 0 {
		var err error
		if item, err = s.get(ctx, pk); err != nil {
			return it, err
		}
	}
	if err := attributevalue.UnmarshalMap(item, &it); err != nil {
		return it, fmt.Errorf("decode %s: %w", what, err)
	}
	return it, nil
}

// eventFrom decodes the old event item a failed condition returned (see oldItem).
func (s *Store) eventFrom(ctx context.Context, item map[string]types.AttributeValue, symID string) (grants.ProcessedEvent, error) {
	it, err := oldItem[eventItem](ctx, s, item, eventKey(symID), "event "+symID)
	if err != nil {
		return grants.ProcessedEvent{}, err
	}
	ev := grants.ProcessedEvent{SymEventID: it.SymID, GrantID: it.GrantID, At: parseTS(it.At)}
	if err := json.Unmarshal([]byte(it.Result), &ev.Result); err != nil {
		return grants.ProcessedEvent{}, fmt.Errorf("decode stored result of %s: %w", symID, err)
	}
	return ev, nil
}

// grantFrom decodes a grant item, or the old one a failed condition
// returned (see oldItem).
func (s *Store) grantFrom(ctx context.Context, item map[string]types.AttributeValue, id string) (grants.Grant, error) {
	it, err := oldItem[grantItem](ctx, s, item, grantKey(id), "grant "+id)
	if err != nil {
		return grants.Grant{}, err
	}
	return s.fromItem(it), nil
}

func (s *Store) get(ctx context.Context, pk string) (map[string]types.AttributeValue, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.table, Key: key(pk), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", pk, err)
	}
	if len(out.Item) == 0 {
		return nil, grants.ErrNotFound
	}
	return out.Item, nil
}

// RecordEvent implements grants.Store.
func (s *Store) RecordEvent(ctx context.Context, ev grants.ProcessedEvent) error {
	put, err := s.eventPut(ev)
	if err != nil {
		return fmt.Errorf("marshal event: %w", err)
	}
	_, err = s.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: put.TableName, Item: put.Item, ConditionExpression: put.ConditionExpression,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		old, gerr := s.eventFrom(ctx, ccf.Item, ev.SymEventID)
		if gerr != nil {
			return gerr
		}
		return &grants.ConflictError{Event: &old}
	}
	if err != nil {
		return fmt.Errorf("put event %s: %w", ev.SymEventID, err)
	}
	return nil
}

// GetGrant implements grants.Store.
func (s *Store) GetGrant(ctx context.Context, id string) (grants.Grant, error) {
	item, err := s.get(ctx, grantKey(id))
	if err != nil {
		return grants.Grant{}, err
	}
	return s.grantFrom(ctx, item, id)
}

// Membership implements grants.Store. A membership never written reads as
// empty with no token.
func (s *Store) Membership(ctx context.Context, k grants.Key) (grants.Membership, error) {
	item, err := s.get(ctx, s.memberKey(k))
	if errors.Is(err, grants.ErrNotFound) {
		return grants.Membership{Kind: k.Kind, Account: k.Account, IAMUser: k.User, Group: k.Group}, nil
	}
	if err != nil {
		return grants.Membership{}, err
	}
	var it memberItem
	if err := attributevalue.UnmarshalMap(item, &it); err != nil {
		return grants.Membership{}, fmt.Errorf("decode membership: %w", err)
	}
	return s.membership(it), nil
}

// MarkSynced implements grants.Store.
func (s *Store) MarkSynced(ctx context.Context, k grants.Key, token, grantID string, t grants.Transition) (bool, error) {
	var member types.TransactWriteItem
	if token == "" {
		// Never written: it stays unwritten unless someone wrote meanwhile.
		member.ConditionCheck = &types.ConditionCheck{TableName: &s.table, Key: key(s.memberKey(k)),
			ConditionExpression: aws.String("attribute_not_exists(pk)")}
	} else {
		member.Update = &types.Update{TableName: &s.table, Key: key(s.memberKey(k)),
			UpdateExpression:          aws.String("REMOVE due_pk, due_at"),
			ConditionExpression:       aws.String("#tok = :tok"),
			ExpressionAttributeNames:  map[string]string{"#tok": "token"},
			ExpressionAttributeValues: map[string]types.AttributeValue{":tok": &types.AttributeValueMemberS{Value: token}}}
		if t.Action == "iam_remove" && s.RecheckAfter > 0 {
			// Synced, and queued for the read-back in the same write.
			member.Update.UpdateExpression = aws.String("SET due_pk = :recheck, due_at = :at")
			member.Update.ExpressionAttributeValues[":recheck"] = &types.AttributeValueMemberS{Value: dueRecheck}
			member.Update.ExpressionAttributeValues[":at"] = &types.AttributeValueMemberS{Value: ts(t.At.Add(s.RecheckAfter))}
		}
	}
	if grantID == "" {
		if member.Update == nil {
			_, err := s.get(ctx, s.memberKey(k))
			if errors.Is(err, grants.ErrNotFound) {
				return true, nil
			}
			return false, err
		}
		_, err := s.db.UpdateItem(ctx, updateInput(member.Update))
		var ccf *types.ConditionalCheckFailedException
		if errors.As(err, &ccf) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("clear dirty: %w", err)
		}
		return true, nil
	}
	h, err := attributevalue.Marshal([]grants.Transition{t})
	if err != nil {
		return false, fmt.Errorf("marshal history: %w", err)
	}
	history := types.TransactWriteItem{Update: s.historyAppend(grantID, h)}
	_, err = s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{member, history}})
	var tce *types.TransactionCanceledException
	if errors.As(err, &tce) && failedAt(tce, 0) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("mark synced: %w", err)
	}
	return true, nil
}

// Due implements grants.Store.
func (s *Store) Due(ctx context.Context, now time.Time, limit int32) ([]grants.Grant, error) {
	return queryDue(ctx, s, dueExpiry, now, limit, "due grant", s.fromItem)
}

// Dirty implements grants.Store.
func (s *Store) Dirty(ctx context.Context, before time.Time, limit int32) ([]grants.Membership, error) {
	return queryDue(ctx, s, dueDirty, before, limit, "dirty membership", s.membership)
}

// decodeEach unmarshals every item into a T and converts it.
func decodeEach[T, R any](items []map[string]types.AttributeValue, what string, conv func(T) R) ([]R, error) {
	out := make([]R, 0, len(items))
	for _, item := range items {
		var it T
		if err := attributevalue.UnmarshalMap(item, &it); err != nil {
			return nil, fmt.Errorf("decode %s: %w", what, err)
		}
		out = append(out, conv(it))
	}
	return out, nil
}

// queryDue decodes up to limit items of one partition of the due index that
// are due by upTo. A function, not a method: methods take no type parameters.
func queryDue[T, R any](ctx context.Context, s *Store, partition string, upTo time.Time, limit int32, what string, conv func(T) R) ([]R, error) {
	out, err := s.db.Query(ctx, &dynamodb.QueryInput{
		TableName: &s.table, IndexName: aws.String(IndexName),
		KeyConditionExpression: aws.String("due_pk = :p AND due_at <= :t"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":p": &types.AttributeValueMemberS{Value: partition},
			":t": &types.AttributeValueMemberS{Value: ts(upTo)},
		},
		Limit: aws.Int32(limit),
	})
	if err != nil {
		return nil, fmt.Errorf("query %s index: %w", IndexName, err)
	}
	return decodeEach(out.Items, what, conv)
}

// Rechecks implements grants.Store.
func (s *Store) Rechecks(ctx context.Context, before time.Time, limit int32) ([]grants.Membership, error) {
	return queryDue(ctx, s, dueRecheck, before, limit, "membership to read back", s.membership)
}

// Rechecked implements grants.Store.
func (s *Store) Rechecked(ctx context.Context, k grants.Key, token string) error {
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: &s.table, Key: key(s.memberKey(k)),
		UpdateExpression:         aws.String("REMOVE due_pk, due_at"),
		ConditionExpression:      aws.String("#tok = :tok AND due_pk = :recheck"),
		ExpressionAttributeNames: map[string]string{"#tok": "token"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":tok":     &types.AttributeValueMemberS{Value: token},
			":recheck": &types.AttributeValueMemberS{Value: dueRecheck},
		}})
	var ccf *types.ConditionalCheckFailedException
	if err != nil && !errors.As(err, &ccf) {
		return fmt.Errorf("rechecked %s: %w", k, err)
	}
	return nil
}

// Undue implements grants.Store.
func (s *Store) Undue(ctx context.Context, grantID string) error {
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: &s.table, Key: key(grantKey(grantID)),
		UpdateExpression: aws.String("REMOVE due_pk, due_at"), ConditionExpression: aws.String("attribute_exists(pk)")})
	var ccf *types.ConditionalCheckFailedException
	if err != nil && !errors.As(err, &ccf) {
		return fmt.Errorf("undue %s: %w", grantID, err)
	}
	return nil
}

// MarkWarned implements grants.Store: warned_at is set once, on an ACTIVE
// grant; every other caller is told it is not theirs to send.
func (s *Store) MarkWarned(ctx context.Context, grantID string, at time.Time) (bool, error) {
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: &s.table, Key: key(grantKey(grantID)),
		UpdateExpression:          aws.String("SET warned_at = :at"),
		ConditionExpression:       aws.String("#st = :active AND attribute_not_exists(warned_at)"),
		ExpressionAttributeNames:  map[string]string{"#st": "state"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":at": &types.AttributeValueMemberS{Value: ts(at)}, ":active": &types.AttributeValueMemberS{Value: string(grants.StateActive)}},
	})
	var ccf *types.ConditionalCheckFailedException
	switch {
	case errors.As(err, &ccf):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("mark %s warned: %w", grantID, err)
	}
	return true, nil
}

var _ grants.Store = (*Store)(nil)

// Filter selects grants for List (iamjit grants list). Zero fields match
// everything.
type Filter struct {
	Active  bool      // only ACTIVE grants
	User    string    // IAM user or requester email
	Group   string    // group name
	Account string    // the group's account id
	Since   time.Time // granted, or ended, at or after Since
}

// List returns the grants matching f. It is an operator command, not a
// request path: a paginated Scan of the whole table (with a filter, which
// saves bandwidth, not read capacity) is acceptable there.
func (s *Store) List(ctx context.Context, f Filter) ([]grants.Grant, error) {
	expr := "#kind = :grant"
	vals := map[string]types.AttributeValue{":grant": &types.AttributeValueMemberS{Value: "grant"}}
	names := map[string]string{"#kind": "kind"}
	if f.Active {
		expr += " AND #st = :active"
		names["#st"] = "state"
		vals[":active"] = &types.AttributeValueMemberS{Value: string(grants.StateActive)}
	}
	if f.User != "" {
		expr += " AND (iam_user = :user OR requester = :user)"
		vals[":user"] = &types.AttributeValueMemberS{Value: f.User}
	}
	if f.Group != "" {
		expr += " AND grp = :grp"
		vals[":grp"] = &types.AttributeValueMemberS{Value: f.Group}
	}
	switch {
	case f.Account == "":
	case s.stored(f.Account) == "":
		expr += " AND attribute_not_exists(#acct)"
		names["#acct"] = "account"
	default:
		expr += " AND #acct = :acct"
		names["#acct"] = "account"
		vals[":acct"] = &types.AttributeValueMemberS{Value: f.Account}
	}
	if !f.Since.IsZero() {
		expr += " AND (granted_at >= :since OR revoked_at >= :since)"
		vals[":since"] = &types.AttributeValueMemberS{Value: ts(f.Since)}
	}
	in := &dynamodb.ScanInput{TableName: &s.table, FilterExpression: &expr, ExpressionAttributeNames: names, ExpressionAttributeValues: vals}
	items, err := allItems(ctx, dynamodb.NewScanPaginator(s.db, in),
		func(p *dynamodb.ScanOutput) []map[string]types.AttributeValue { return p.Items })
	if err != nil {
		return nil, fmt.Errorf("scan grants: %w", err)
	}
	return decodeEach(items, "grant", s.fromItem)
}

// allItems reads every page of a Scan or Query paginator; items takes a
// page's items, as the two paginators' pages are of different types.
func allItems[P any](ctx context.Context, p interface {
	HasMorePages() bool
	NextPage(context.Context, ...func(*dynamodb.Options)) (P, error)
}, items func(P) []map[string]types.AttributeValue) ([]map[string]types.AttributeValue, error) {
	var out []map[string]types.AttributeValue
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		out = append(out, items(page)...)
	}
	return out, nil
}

// activeQuery reads the expiry index, which holds every ACTIVE grant (and
// revoked ones still waiting for the sweeper to publish), so reading the
// active grants never scans the table.
func (s *Store) activeQuery(sel types.Select) *dynamodb.QueryInput {
	return &dynamodb.QueryInput{
		TableName: &s.table, IndexName: aws.String(IndexName), Select: sel,
		KeyConditionExpression:   aws.String("due_pk = :p"),
		FilterExpression:         aws.String("#st = :active"),
		ExpressionAttributeNames: map[string]string{"#st": "state"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":p":      &types.AttributeValueMemberS{Value: dueExpiry},
			":active": &types.AttributeValueMemberS{Value: string(grants.StateActive)},
		},
	}
}

// ActiveGrants lists every ACTIVE grant, expired or not, from the expiry
// index (eventually consistent: reconcile re-reads each membership
// consistently before it changes anything).
func (s *Store) ActiveGrants(ctx context.Context) ([]grants.Grant, error) {
	items, err := allItems(ctx, dynamodb.NewQueryPaginator(s.db, s.activeQuery(types.SelectAllAttributes)),
		func(p *dynamodb.QueryOutput) []map[string]types.AttributeValue { return p.Items })
	if err != nil {
		return nil, fmt.Errorf("query active grants: %w", err)
	}
	return decodeEach(items, "active grant", s.fromItem)
}

// CountActive counts ACTIVE grants (the active-grants gauge).
func (s *Store) CountActive(ctx context.Context) (int, error) {
	n := 0
	p := dynamodb.NewQueryPaginator(s.db, s.activeQuery(types.SelectCount))
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return 0, fmt.Errorf("count active grants: %w", err)
		}
		n += int(page.Count)
	}
	return n, nil
}

// AppendHistory adds ts, in order, to an existing grant's history in one
// write (an operator's note, such as the reason of a manual revoke; the
// session writes of an ended membership). ErrNotFound when there is no
// grant.
func (s *Store) AppendHistory(ctx context.Context, grantID string, ts ...grants.Transition) error {
	if len(ts) == 0 {
		return nil
	}
	h, err := attributevalue.Marshal(ts)
	if err != nil {
		return fmt.Errorf("marshal history: %w", err)
	}
	_, err = s.db.UpdateItem(ctx, updateInput(s.historyAppend(grantID, h)))
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return grants.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("append history of %s: %w", grantID, err)
	}
	return nil
}

// historyAppend appends the transitions h to an existing grant's history.
func (s *Store) historyAppend(grantID string, h types.AttributeValue) *types.Update {
	return &types.Update{TableName: &s.table, Key: key(grantKey(grantID)),
		UpdateExpression:    aws.String("SET history = list_append(if_not_exists(history, :empty), :h)"),
		ConditionExpression: aws.String("attribute_exists(pk)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":empty": &types.AttributeValueMemberL{Value: []types.AttributeValue{}}, ":h": h}}
}

// updateInput is a transaction's update run on its own.
func updateInput(u *types.Update) *dynamodb.UpdateItemInput {
	return &dynamodb.UpdateItemInput{TableName: u.TableName, Key: u.Key, UpdateExpression: u.UpdateExpression,
		ConditionExpression: u.ConditionExpression, ExpressionAttributeNames: u.ExpressionAttributeNames,
		ExpressionAttributeValues: u.ExpressionAttributeValues}
}
