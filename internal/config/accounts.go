package config

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws/arn"
	"github.com/iamjit/iamjit/events"
)

// Chain is one member account's role chain, an entry of IAMJIT_ACCOUNTS:
// AssumeRole(ConnectorRoleARN, ExternalID), then AssumeRole(IAMRoleARN).
// BackstopRoleARN, optional, is the execution role of that account's
// backstop schedules (a role of the same account).
type Chain struct {
	ConnectorRoleARN string `json:"connector_role_arn"`
	ExternalID       Secret `json:"external_id"`
	IAMRoleARN       string `json:"iam_role_arn"`
	BackstopRoleARN  string `json:"backstop_role_arn,omitempty"`
	// BackstopDLQARN, optional, is the SQS queue of that account that
	// receives a backstop schedule's removal that kept failing.
	BackstopDLQARN string `json:"backstop_dlq_arn,omitempty"`
}

// parseAccounts reads IAMJIT_ACCOUNTS: inline JSON, or @PATH to a file of
// it. Every problem names its entry; no message quotes an external id.
func parseAccounts(v string) (map[string]Chain, error) {
	src := "IAMJIT_ACCOUNTS"
	b := []byte(v)
	if path, ok := strings.CutPrefix(v, "@"); ok {
		var err error
		if b, err = os.ReadFile(path); err != nil {
			return nil, fmt.Errorf("%s: read %s: %w", src, path, err)
		}
		src += " (" + path + ")"
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("%s: not a JSON object of account id to chain: %s", src, jsonProblem(err))
	}
	out := map[string]Chain{}
	var errs []error
	for _, id := range slices.Sorted(maps.Keys(raw)) {
		bad := func(format string, args ...any) {
			errs = append(errs, fmt.Errorf("%s: entry %q: "+format, append([]any{src, id}, args...)...))
		}
		var c Chain
		dec := json.NewDecoder(bytes.NewReader(raw[id]))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil {
			bad("want {\"connector_role_arn\", \"external_id\", \"iam_role_arn\"} and optionally \"backstop_role_arn\", \"backstop_dlq_arn\": %s", jsonProblem(err))
			continue
		}
		if !events.IsAccountID(id) {
			bad("an account id is 12 digits")
		}
		for _, r := range []struct {
			key, v   string
			optional bool
		}{{"connector_role_arn", c.ConnectorRoleARN, false}, {"iam_role_arn", c.IAMRoleARN, false}, {"backstop_role_arn", c.BackstopRoleARN, true}} {
			a, err := arn.Parse(r.v)
			switch {
			case r.v == "" && r.optional:
			case r.v == "":
				bad("%s is required", r.key)
			case err != nil || a.Service != "iam" || !strings.HasPrefix(a.Resource, "role/"):
				bad("%s %q is not an IAM role ARN", r.key, r.v)
			case a.AccountID != id:
				bad("%s %q is a role of account %s, not of %s", r.key, r.v, a.AccountID, id)
			}
		}
		if c.ExternalID == "" {
			bad("external_id is required")
		}
		if q, err := arn.Parse(c.BackstopDLQARN); c.BackstopDLQARN != "" && (err != nil || q.Service != "sqs" || q.AccountID != id) {
			bad("backstop_dlq_arn %q is not an SQS queue ARN of account %s", c.BackstopDLQARN, id)
		}
		out[id] = c
	}
	return out, errors.Join(errs...)
}

// jsonProblem says what is wrong with a document without quoting it (it
// holds external ids).
func jsonProblem(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("syntax error at byte %d", syn.Offset)
	case errors.As(err, &typ):
		return fmt.Sprintf("%s must not be a JSON %s", cmp.Or(typ.Field, "the value"), typ.Value)
	}
	// encoding/json has no error type for DisallowUnknownFields: its text
	// is the only place the key's name is.
	if msg := err.Error(); strings.HasPrefix(msg, "json: unknown field ") {
		return "unknown key " + strings.TrimPrefix(msg, "json: unknown field ")
	}
	return "not valid JSON"
}
