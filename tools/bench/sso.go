package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/identitystore"
	istypes "github.com/aws/aws-sdk-go-v2/service/identitystore/types"
	"github.com/aws/aws-sdk-go-v2/service/ssoadmin"

	"github.com/iamjit/iamjit/internal/devstack"
	"github.com/iamjit/iamjit/internal/motoserver"
)

// identityCenter makes, in the dev stack's Identity Center instance, an
// Identity Store user for each of e's users (the same email) and
// ssoPermissionSets permission sets, straight to moto; it returns the
// environment that lets `iamjit run` assign them in the home account.
func (e *env) identityCenter(ctx context.Context) ([]string, error) {
	ic := e.stack.IdentityCenter
	if ic.InstanceARN == "" {
		return nil, fmt.Errorf("the dev stack has no Identity Center instance")
	}
	store, admin := identitystore.NewFromConfig(e.direct), ssoadmin.NewFromConfig(e.direct)
	e.ssoUsers = map[string]string{}
	g := newGroup(ctx, 8)
	gctx := g.ctx
	ids := make([]string, len(e.users))
	for i, email := range e.users {
		g.Go(func() error {
			out, err := store.CreateUser(gctx, &identitystore.CreateUserInput{IdentityStoreId: &ic.IdentityStoreID,
				UserName: aws.String(email), DisplayName: aws.String(email),
				Name:   &istypes.Name{GivenName: aws.String("bench"), FamilyName: aws.String(fmt.Sprint(i))},
				Emails: []istypes.Email{{Value: aws.String(email), Primary: true, Type: aws.String("work")}}})
			if err != nil {
				return wrap(err, "create Identity Store user %s", email)
			}
			ids[i] = aws.ToString(out.UserId)
			return nil
		})
	}
	for i := range ssoPermissionSets {
		// moto 5.2.1 cannot read back a permission set made without a
		// session duration.
		out, err := admin.CreatePermissionSet(ctx, &ssoadmin.CreatePermissionSetInput{InstanceArn: &ic.InstanceARN,
			Name: aws.String(fmt.Sprintf("bench-ps%d", i)), SessionDuration: aws.String(devstack.SSOSessionDuration)})
		if err != nil {
			return nil, wrap(err, "create permission set %d", i)
		}
		e.permissionSets = append(e.permissionSets, aws.ToString(out.PermissionSet.PermissionSetArn))
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	for i, email := range e.users {
		e.ssoUsers[email] = ids[i]
	}
	return []string{"IAMJIT_SSO_INSTANCE_ARN=" + ic.InstanceARN, "IAMJIT_SSO_PERMISSION_SETS=" + strings.Join(e.permissionSets, ","),
		"IAMJIT_SSO_ASSIGNMENT_ACCOUNTS=" + motoserver.AccountID}, nil
}

// ssoEscalates are n escalates of aws_sso_permission_set targets over
// every (user, permission set) pair in the home account, as escalates
// builds them for IAM groups; each escalate's user is the Identity Store
// user id and its group the permission set ARN (the proxy's removal key).
func (e *env) ssoEscalates(n int, tag string) []*escalate {
	out := e.escalates(n, tag)
	for i, ev := range out {
		ps := e.permissionSets[(i/len(e.users)+i)%len(e.permissionSets)]
		var env map[string]any
		_ = json.Unmarshal([]byte(ev.body), &env)
		d := env["detail"].(map[string]any)
		f := d["fields"].(map[string]any)
		target := fmt.Sprintf("target-ps-%d", (i/len(e.users)+i)%len(e.permissionSets))
		f["target_id"] = target
		f["target"] = map[string]any{"name": target, "srn": "bench:access_target:aws_sso_permission_set:" + target, "type": "aws_sso_permission_set",
			"label": target, "settings": map[string]string{"permission_set_arn": ps, "account_id": motoserver.AccountID}}
		run := d["run"].(map[string]any)["srn"].(string)
		body, _ := json.Marshal(env)
		out[i] = &escalate{grantID: run + "/" + target, user: e.ssoUsers[ev.user], group: ps, body: string(body)}
	}
	return out
}
