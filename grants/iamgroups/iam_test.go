package iamgroups_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/iamjit/iamjit/grants"
	"github.com/iamjit/iamjit/grants/iamgroups"
	"github.com/iamjit/iamjit/internal/awsx"
	"github.com/iamjit/iamjit/internal/motoserver"
	"github.com/iamjit/iamjit/internal/testclock"
)

func members(t *testing.T, client *iam.Client, group string) []string {
	t.Helper()
	out, err := client.GetGroup(context.Background(), &iam.GetGroupInput{GroupName: &group})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, u := range out.Users {
		names = append(names, aws.ToString(u.UserName))
	}
	sort.Strings(names)
	return names
}

func TestIAM(t *testing.T) {
	srv := motoserver.Start(t)
	client := iam.NewFromConfig(srv.AWSConfig(t))
	ctx := context.Background()
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(client.CreateGroup(ctx, &iam.CreateGroupInput{GroupName: aws.String("sym-readonly"), Path: aws.String("/sym/")}))
	must(client.CreateGroup(ctx, &iam.CreateGroupInput{GroupName: aws.String("admins")}))
	for user, email := range map[string]string{"alice": "alice@example.com", "bob": "bob@example.com", "carol": ""} {
		in := &iam.CreateUserInput{UserName: aws.String(user)}
		if email != "" {
			in.Tags = []types.Tag{{Key: aws.String("email"), Value: aws.String(email)}, {Key: aws.String("team"), Value: aws.String("x")}}
		}
		must(client.CreateUser(ctx, in))
	}
	c := testclock.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	a := iamgroups.New(client, time.Minute, c.Now, slog.New(slog.DiscardHandler))

	t.Run("add is idempotent", func(t *testing.T) {
		for range 2 {
			id, err := a.AddUser(ctx, "alice", "sym-readonly")
			if err != nil {
				t.Fatal(err)
			}
			if id == "" {
				t.Error("no request id for the grant's history")
			}
		}
		if got := members(t, client, "sym-readonly"); len(got) != 1 || got[0] != "alice" {
			t.Errorf("members %v", got)
		}
	})
	t.Run("remove", func(t *testing.T) {
		if _, err := a.RemoveUser(ctx, "alice", "sym-readonly"); err != nil {
			t.Fatal(err)
		}
		if got := members(t, client, "sym-readonly"); len(got) != 0 {
			t.Errorf("members %v after remove", got)
		}
		// moto answers NoSuchEntity for a non-member; that is done.
		if _, err := a.RemoveUser(ctx, "alice", "sym-readonly"); err != nil {
			t.Errorf("remove of a non-member: %v", err)
		}
		if _, err := a.RemoveUser(ctx, "nobody", "sym-readonly"); err != nil {
			t.Errorf("remove of a missing user: %v", err)
		}
	})
	t.Run("add to a missing group is transient", func(t *testing.T) {
		_, err := a.AddUser(ctx, "alice", "no-such-group")
		var tr *awsx.Transient
		if !errors.As(err, &tr) {
			t.Errorf("AddUser to a missing group = %v, want *awsx.Transient (IAM is eventually consistent)", err)
		}
	})
	t.Run("group path and cache", func(t *testing.T) {
		g, err := a.Group(ctx, "sym-readonly")
		if err != nil {
			t.Fatal(err)
		}
		if g.Name != "sym-readonly" || g.Path != "/sym/" || g.ARN != "arn:aws:iam::"+motoserver.AccountID+":group/sym/sym-readonly" {
			t.Errorf("group %+v", g)
		}
		if g, err := a.Group(ctx, "admins"); err != nil || g.Path != "/" {
			t.Errorf("admins %+v %v", g, err)
		}
		if _, err := a.Group(ctx, "nope"); !errors.Is(err, grants.ErrNotFound) {
			t.Errorf("missing group: %v, want ErrNotFound", err)
		}
		must(client.DeleteGroup(ctx, &iam.DeleteGroupInput{GroupName: aws.String("admins")}))
		if g, err := a.Group(ctx, "admins"); err != nil || g.Name != "admins" {
			t.Errorf("within the ttl the cached group is used: %+v %v", g, err)
		}
		c.Advance(2 * time.Minute)
		if _, err := a.Group(ctx, "admins"); !errors.Is(err, grants.ErrNotFound) {
			t.Errorf("after the ttl IAM is asked again: %v", err)
		}
	})
	t.Run("user exists", func(t *testing.T) {
		for user, want := range map[string]bool{"alice": true, "carol": true, "alice@example.com": false, "zed": false} {
			if got, err := a.UserExists(ctx, user); err != nil || got != want {
				t.Errorf("UserExists(%q) = %v %v, want %v", user, got, err, want)
			}
		}
	})
	t.Run("users with tag", func(t *testing.T) {
		got, err := a.UsersWithTag(ctx, "email")
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got["alice"] != "alice@example.com" || got["bob"] != "bob@example.com" {
			t.Errorf("UsersWithTag(email) = %v", got)
		}
		if got, err := a.UsersWithTag(ctx, "Email"); err != nil || len(got) != 0 {
			t.Errorf("tag keys are case-sensitive: %v %v", got, err)
		}
	})
	t.Run("managed groups", func(t *testing.T) {
		if _, err := a.AddUser(ctx, "bob", "sym-readonly"); err != nil {
			t.Fatal(err)
		}
		got, err := a.ManagedGroups(ctx, "/sym/")
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || len(got["sym-readonly"]) != 1 || got["sym-readonly"][0] != "bob" {
			t.Errorf("ManagedGroups(/sym/) = %v", got)
		}
	})
}

// The tag index reads users in bulk where the role may
// iam:GetAccountAuthorizationDetails, and one ListUserTags per user where
// IAM (moto's access control) denies it: the same answer either way, the
// denial said once.
func TestUsersWithTagUnderAccessControl(t *testing.T) {
	srv := motoserver.Start(t)
	ctx := context.Background()
	admin := iam.NewFromConfig(srv.AWSConfig(t))
	for user, email := range map[string]string{"alice": "alice@example.com", "bob": "bob@example.com", "carol": ""} {
		in := &iam.CreateUserInput{UserName: aws.String(user)}
		if email != "" {
			in.Tags = []types.Tag{{Key: aws.String("email"), Value: aws.String(email)}}
		}
		if _, err := admin.CreateUser(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	// reader is an IAM user allowed actions, with moto-issued keys.
	reader := func(name string, actions ...string) aws.Config {
		doc, _ := json.Marshal(map[string]any{"Version": "2012-10-17", "Statement": []any{map[string]any{"Effect": "Allow", "Action": actions, "Resource": "*"}}})
		if _, err := admin.CreateUser(ctx, &iam.CreateUserInput{UserName: &name}); err != nil {
			t.Fatal(err)
		}
		if _, err := admin.PutUserPolicy(ctx, &iam.PutUserPolicyInput{UserName: &name, PolicyName: aws.String("read"), PolicyDocument: aws.String(string(doc))}); err != nil {
			t.Fatal(err)
		}
		key, err := admin.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: &name})
		if err != nil {
			t.Fatal(err)
		}
		cfg := srv.AWSConfig(t)
		cfg.Credentials = credentials.NewStaticCredentialsProvider(aws.ToString(key.AccessKey.AccessKeyId), aws.ToString(key.AccessKey.SecretAccessKey), "")
		return cfg
	}
	bulk := reader("bulk-reader", "iam:GetAccountAuthorizationDetails")
	perUser := reader("per-user-reader", "iam:ListUsers", "iam:ListUserTags")
	srv.ResetAuth(t, 0)

	for name, cfg := range map[string]aws.Config{"bulk": bulk, "per user": perUser} {
		t.Run(name, func(t *testing.T) {
			calls := awsx.NewCounter()
			cfg.APIOptions = append(cfg.APIOptions, calls.Register)
			var logged bytes.Buffer
			a := iamgroups.New(iam.NewFromConfig(cfg), time.Minute, time.Now, slog.New(slog.NewTextHandler(&logged, nil)))
			for range 2 {
				got, err := a.UsersWithTag(ctx, "email")
				if err != nil || len(got) != 2 || got["alice"] != "alice@example.com" || got["bob"] != "bob@example.com" {
					t.Fatalf("UsersWithTag(email) = %v, %v", got, err)
				}
			}
			n := map[string]int64{}
			for _, c := range calls.Snapshot() {
				n[c.Operation] = c.Calls
			}
			// Two builds: one call each in bulk; denied, the bulk call is
			// asked again each time, then ListUsers and a ListUserTags for
			// each of the five users.
			want := map[string]int64{"GetAccountAuthorizationDetails": 2}
			warnings := 0
			if name == "per user" {
				want = map[string]int64{"GetAccountAuthorizationDetails": 2, "ListUsers": 2, "ListUserTags": 2 * 5}
				warnings = 1
			}
			if !maps.Equal(n, want) || strings.Count(logged.String(), "GetAccountAuthorizationDetails is denied") != warnings {
				t.Errorf("calls %v, want %v; log %q (want %d warning)", n, want, logged.String(), warnings)
			}
		})
	}
}
