package identitycenter

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssoadmin"
	"github.com/aws/aws-sdk-go-v2/service/ssoadmin/types"
	"github.com/aws/smithy-go"
)

// PermissionSet is a permission set's description.
type PermissionSet struct {
	ARN, Name string
	// SessionDuration is how long a session started from it lasts: what a
	// revocation must outlast. AWS's default, one hour, when unset.
	SessionDuration time.Duration
}

// defaultSessionDuration is AWS's for a permission set that sets none.
const defaultSessionDuration = time.Hour

// PermissionSet describes the permission set of the discovered instance,
// cached for the TTL. No such permission set is a *NotFoundError: the
// start-up check of the permission sets listed in targets.
func (c *Client) PermissionSet(ctx context.Context, arn string) (PermissionSet, error) {
	if ps, ok := c.permSets.Get(arn); ok {
		return ps, nil
	}
	in, err := c.instance()
	if err != nil {
		return PermissionSet{}, err
	}
	out, err := c.admin.DescribePermissionSet(ctx, &ssoadmin.DescribePermissionSetInput{InstanceArn: &in.arn, PermissionSetArn: &arn})
	var nf *types.ResourceNotFoundException
	if errors.As(err, &nf) {
		return PermissionSet{}, &NotFoundError{Kind: "permission set", ID: arn, Err: err}
	}
	var undecodable *smithy.DeserializationError
	if errors.As(err, &undecodable) {
		// moto 5.2.1 stores a permission set created (or updated) without a
		// SessionDuration as the number 3600 where AWS writes "PT1H", and
		// the SDK cannot read that answer (quirk).
		return PermissionSet{}, fmt.Errorf("describe permission set %s: its description cannot be read (moto 5.2.1 writes a permission set made without a session duration that way: give it one): %w", arn, err)
	}
	if err != nil {
		return PermissionSet{}, fmt.Errorf("describe permission set %s: %w", arn, err)
	}
	ps := PermissionSet{ARN: arn, Name: aws.ToString(out.PermissionSet.Name), SessionDuration: defaultSessionDuration}
	if s := aws.ToString(out.PermissionSet.SessionDuration); s != "" {
		if ps.SessionDuration, err = parseDuration(s); err != nil {
			return PermissionSet{}, fmt.Errorf("permission set %s: session duration: %w", arn, err)
		}
	}
	c.permSets.Put(arn, ps)
	return ps, nil
}

// isoDuration is the ISO 8601 time-only form AWS writes session durations
// in, such as PT1H, PT1H30M or PT12H.
var isoDuration = regexp.MustCompile(`^PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?$`)

func parseDuration(s string) (time.Duration, error) {
	m := isoDuration.FindStringSubmatch(s)
	if m == nil || s == "PT" {
		return 0, fmt.Errorf("%q is not an ISO 8601 duration such as PT1H", s)
	}
	var d time.Duration
	for i, unit := range []time.Duration{time.Hour, time.Minute, time.Second} {
		if m[i+1] == "" {
			continue
		}
		n, err := strconv.Atoi(m[i+1])
		if err != nil || n > 1_000_000 { // bounded: no overflow
			return 0, fmt.Errorf("%q: %q is out of range", s, m[i+1])
		}
		d += time.Duration(n) * unit
	}
	if d <= 0 || d > 24*time.Hour { // AWS allows 1 to 12 hours
		return 0, fmt.Errorf("%q is not a session duration", s)
	}
	return d, nil
}
