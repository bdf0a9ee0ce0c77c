package backstop

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	"github.com/aws/aws-sdk-go-v2/service/scheduler/types"

	"github.com/iamjit/iamjit/internal/awsx"
)

// probePrefix starts the names of Check's probe schedules.
const probePrefix = "iamjit-check-"

// ProbeTarget is the universal target of Check's probe schedule: a call
// that changes nothing, should the probe ever fire (it cannot: it is
// DISABLED, and a year away).
const ProbeTarget = "arn:aws:scheduler:::aws-sdk:sts:getCallerIdentity"

// probeMaxAge: older probes are a crashed Check's, swept by the next one.
const probeMaxAge = time.Hour

// Check is the start-up check; its error names the setting to fix
// (IAMJIT_BACKSTOP_GROUP, or the role's setting), and the caller exits 2.
//
//  1. The group exists: GetScheduleGroup. iamjit never creates it: on moto
//     5.2.1 CreateScheduleGroup on an existing name replaces the group with
//     an empty one, deleting every schedule in it.
//  2. The role can be passed, and every call Arm, Move, Disarm and List
//     make is allowed: a probe schedule is created in the group with the
//     execution role (the service checks iam:PassRole on the role for the
//     caller, as it will for every backstop), read, rewritten (UpdateSchedule
//     checks iam:PassRole again) and deleted; ListSchedules sweeps probes a
//     crashed Check left behind. The probe is DISABLED, a year away, and its
//     target is sts:GetCallerIdentity: it can never do anything.
//
// Why a probe rather than iam:SimulatePrincipalPolicy: the simulator needs
// a permission of its own that iamjit's role has no other use for, it
// does not see service control policies or the execution role's
// existence, and moto does not implement it. The probe makes the very
// calls the backstop will make, against AWS and moto alike (moto does not
// check iam:PassRole, but does check the scheduler actions when its IAM
// access control is on).
func (b *Backstop) Check(ctx context.Context) error {
	if err := b.groupExists(ctx); err != nil {
		return err
	}
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	name := probePrefix + hex.EncodeToString(rnd[:])
	d := definition{name: name, description: "iamjit start-up check: safe to delete", targetARN: ProbeTarget, input: "{}"}
	// A fresh input per call: the SDK fills each one's ClientToken in.
	at := ceilSecond(b.opts.Now().AddDate(1, 0, 0))
	probe := func() *scheduler.CreateScheduleInput { return b.schedule(d, at, types.ScheduleStateDisabled) }
	role := func(op string, err error) error {
		hint := fmt.Sprintf("may iamjit pass %s to scheduler.amazonaws.com (iam:PassRole) and %s schedules in group %q?", b.opts.RoleARN, op, b.opts.Group)
		return fmt.Errorf("%s: %s: %s probe schedule %s: %w", b.opts.RoleSetting, hint, op, name, err)
	}
	_, err := b.api.CreateSchedule(ctx, probe())
	// The name is random: a conflict is this Check's own create, retried by
	// the SDK after its answer was lost (the probe exists, as wanted).
	if err != nil && !awsx.IsCode(err, "ConflictException") {
		return role("create", err)
	}
	// From here on the probe exists: delete it whatever else fails.
	failed := func(err error) error {
		if _, derr := b.api.DeleteSchedule(ctx, &scheduler.DeleteScheduleInput{Name: aws.String(name), GroupName: aws.String(b.opts.Group)}); derr != nil && !awsx.IsCode(derr, "ResourceNotFoundException") {
			return fmt.Errorf("%w (and the probe could not be deleted: %v)", err, derr)
		}
		return err
	}
	if _, err := b.api.GetSchedule(ctx, &scheduler.GetScheduleInput{Name: aws.String(name), GroupName: aws.String(b.opts.Group)}); err != nil {
		return failed(role("read", err))
	}
	_, err = b.api.UpdateSchedule(ctx, (*scheduler.UpdateScheduleInput)(probe()))
	if err != nil {
		return failed(role("update", err))
	}
	_, err = b.api.DeleteSchedule(ctx, &scheduler.DeleteScheduleInput{Name: aws.String(name), GroupName: aws.String(b.opts.Group)})
	switch {
	case err == nil || awsx.IsCode(err, "ResourceNotFoundException"):
	case awsx.Retryable(err):
		// The rights are proven; a probe left behind is swept by a later
		// Check (it is disabled and a year away): not worth a failed start.
		b.opts.Log.WarnContext(ctx, "backstop probe schedule not deleted; a later start-up check sweeps it", "schedule", name, "err", err)
		return nil
	default:
		return role("delete", err)
	}
	if err := b.sweepProbes(ctx); err != nil && !awsx.Retryable(err) {
		return err
	} else if err != nil {
		b.opts.Log.WarnContext(ctx, "stale backstop probes not swept; a later start-up check does", "err", err)
	}
	return nil
}

// sweepProbes deletes probes older than probeMaxAge (a Check that died
// between create and delete); younger ones may be another replica's,
// running now.
func (b *Backstop) sweepProbes(ctx context.Context) error {
	p := scheduler.NewListSchedulesPaginator(b.api, &scheduler.ListSchedulesInput{GroupName: aws.String(b.opts.Group), NamePrefix: aws.String(probePrefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("%s: list schedules in group %q: %w", b.opts.RoleSetting, b.opts.Group, err)
		}
		for _, s := range page.Schedules {
			if !strings.HasPrefix(aws.ToString(s.Name), probePrefix) || s.CreationDate == nil || b.opts.Now().Sub(*s.CreationDate) < probeMaxAge {
				continue
			}
			_, err := b.api.DeleteSchedule(ctx, &scheduler.DeleteScheduleInput{Name: s.Name, GroupName: aws.String(b.opts.Group)})
			if err != nil && !awsx.IsCode(err, "ResourceNotFoundException") {
				return fmt.Errorf("delete the stale probe schedule %s: %w", aws.ToString(s.Name), err)
			}
		}
	}
	return nil
}
