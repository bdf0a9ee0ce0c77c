package backstoptest

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/iamjit/iamjit/grants/backstop"
)

// The input is read as AWS reads a universal target's request: member
// names exactly, all of them, strings, nothing else. Each of these fails
// before any call is made.
func TestFireDecodesStrictly(t *testing.T) {
	for input, want := range map[string]string{
		`{"groupName":"g","UserName":"u"}`:               "lacks the member GroupName",
		`{"GroupName":"g"}`:                              "lacks the member UserName",
		`{"GroupName":"g","UserName":"u","Path":"/"}`:    "unknown member Path",
		`{"GroupName":"g","UserName":7}`:                 "not a string",
		`["GroupName"]`:                                  "not a JSON object",
		`{"GroupName":"g","UserName":"u"} {"x":1}`:       "data after",
		`{"GroupName":"g","UserName":"u","username":""}`: "unknown member username",
	} {
		s := backstop.Schedule{Name: "n", TargetARN: backstop.TargetRemoveUserFromGroup, Input: input, State: "ENABLED"}
		if err := Fire(context.Background(), s, aws.Config{}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", input, err, want)
		}
	}
	var in backstop.DeleteAccountAssignmentInput
	if err := decode(`{"InstanceArn":"i","PermissionSetArn":"p","PrincipalId":"u","PrincipalType":"USER","TargetId":"1","TargetType":"AWS_ACCOUNT"}`, &in); err != nil || in.TargetId != "1" || in.PrincipalType != "USER" {
		t.Errorf("decode = %+v, %v", in, err)
	}
	if err := Fire(context.Background(), backstop.Schedule{TargetARN: "arn:aws:scheduler:::aws-sdk:iam:deleteUser", Input: "{}"}, aws.Config{}); err == nil {
		t.Error("an unknown target fired")
	}
	if err := Fire(context.Background(), backstop.Schedule{TargetARN: backstop.TargetRemoveUserFromGroup, State: "DISABLED"}, aws.Config{}); err == nil {
		t.Error("a disabled schedule fired")
	}
}
