// Package backstoptest fires backstop schedules for tests. moto 5.2.1
// stores EventBridge Scheduler schedules but never fires them, so a test
// that wants a due backstop to act does what EventBridge Scheduler would:
// it makes the schedule's universal-target call, with the schedule's input
// as the request, using the execution role's credentials (the test assumes
// the role). Test support only, never part of the binary.
package backstoptest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/identitystore"
	"github.com/aws/aws-sdk-go-v2/service/ssoadmin"
	ssotypes "github.com/aws/aws-sdk-go-v2/service/ssoadmin/types"

	"github.com/iamjit/iamjit/grants/backstop"
)

// Due reports whether s would have fired by now.
func Due(s backstop.Schedule, now time.Time) bool { return !s.At.IsZero() && !now.Before(s.At) }

// Fire makes s's target call with its input, with cfg's credentials (the
// execution role's), and returns the call's error. The input is decoded as
// AWS decodes a universal target's input: a JSON object whose members are
// the API's request members, spelled exactly (PascalCase, case-sensitive);
// an unknown or missing member, or one of another type, is an error, as it
// would be a failed invocation. Fire does not delete the schedule: a test
// that wants ActionAfterCompletion DELETE's effect calls Disarm after.
func Fire(ctx context.Context, s backstop.Schedule, cfg aws.Config) error {
	if s.State != "" && s.State != "ENABLED" {
		return fmt.Errorf("schedule %s is %s: it would not fire", s.Name, s.State)
	}
	switch s.TargetARN {
	case backstop.TargetRemoveUserFromGroup:
		var in backstop.RemoveUserFromGroupInput
		if err := decode(s.Input, &in); err != nil {
			return fmt.Errorf("schedule %s: %w", s.Name, err)
		}
		_, err := iam.NewFromConfig(cfg).RemoveUserFromGroup(ctx, &iam.RemoveUserFromGroupInput{GroupName: &in.GroupName, UserName: &in.UserName})
		return err
	case backstop.TargetDeleteAccountAssignment:
		var in backstop.DeleteAccountAssignmentInput
		if err := decode(s.Input, &in); err != nil {
			return fmt.Errorf("schedule %s: %w", s.Name, err)
		}
		_, err := ssoadmin.NewFromConfig(cfg).DeleteAccountAssignment(ctx, &ssoadmin.DeleteAccountAssignmentInput{
			InstanceArn: &in.InstanceArn, PermissionSetArn: &in.PermissionSetArn,
			PrincipalId: &in.PrincipalId, PrincipalType: ssotypes.PrincipalType(in.PrincipalType),
			TargetId: &in.TargetId, TargetType: ssotypes.TargetType(in.TargetType)})
		return err
	case backstop.TargetDeleteGroupMembership:
		var in backstop.DeleteGroupMembershipInput
		if err := decode(s.Input, &in); err != nil {
			return fmt.Errorf("schedule %s: %w", s.Name, err)
		}
		_, err := identitystore.NewFromConfig(cfg).DeleteGroupMembership(ctx, &identitystore.DeleteGroupMembershipInput{
			IdentityStoreId: &in.IdentityStoreId, MembershipId: &in.MembershipId})
		return err
	}
	return fmt.Errorf("schedule %s: target %s is not one backstoptest can fire", s.Name, s.TargetARN)
}

// decode reads input into out, a struct of string fields tagged with the
// API's member names: every member present, spelled exactly, a string,
// and nothing else (encoding/json alone would match names regardless of
// case and ignore unknown ones, which AWS does not).
func decode(input string, out any) error {
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader([]byte(input)))
	if err := dec.Decode(&raw); err != nil {
		return fmt.Errorf("input %q is not a JSON object: %w", input, err)
	}
	if dec.More() {
		return fmt.Errorf("input %q has data after the object", input)
	}
	v := reflect.ValueOf(out).Elem()
	var want []string
	for i := range v.NumField() {
		name, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("json"), ",")
		want = append(want, name)
		msg, ok := raw[name]
		if !ok {
			return fmt.Errorf("input %q lacks the member %s", input, name)
		}
		var s string
		if err := json.Unmarshal(msg, &s); err != nil {
			return fmt.Errorf("input member %s is not a string: %s", name, msg)
		}
		v.Field(i).SetString(s)
	}
	for name := range raw {
		if !slices.Contains(want, name) {
			return fmt.Errorf("input %q has the unknown member %s (members: %s)", input, name, strings.Join(want, ", "))
		}
	}
	return nil
}
