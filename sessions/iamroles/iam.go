// Package iamroles reads group policies and roles from IAM and writes
// iamjit's session-revocation policy on roles, for package sessions,
// through the IAM client built on the chained IAM-modifier role (the one
// grants/iamgroups uses).
package iamroles

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/iamjit/iamjit/internal/awsx"
	"github.com/iamjit/iamjit/internal/ttlcache"
	"github.com/iamjit/iamjit/sessions"
)

// API is the part of the IAM client the adapter uses.
type API interface {
	ListGroupPolicies(context.Context, *iam.ListGroupPoliciesInput, ...func(*iam.Options)) (*iam.ListGroupPoliciesOutput, error)
	GetGroupPolicy(context.Context, *iam.GetGroupPolicyInput, ...func(*iam.Options)) (*iam.GetGroupPolicyOutput, error)
	ListAttachedGroupPolicies(context.Context, *iam.ListAttachedGroupPoliciesInput, ...func(*iam.Options)) (*iam.ListAttachedGroupPoliciesOutput, error)
	ListAttachedRolePolicies(context.Context, *iam.ListAttachedRolePoliciesInput, ...func(*iam.Options)) (*iam.ListAttachedRolePoliciesOutput, error)
	GetPolicy(context.Context, *iam.GetPolicyInput, ...func(*iam.Options)) (*iam.GetPolicyOutput, error)
	GetPolicyVersion(context.Context, *iam.GetPolicyVersionInput, ...func(*iam.Options)) (*iam.GetPolicyVersionOutput, error)
	ListRoles(context.Context, *iam.ListRolesInput, ...func(*iam.Options)) (*iam.ListRolesOutput, error)
	GetRole(context.Context, *iam.GetRoleInput, ...func(*iam.Options)) (*iam.GetRoleOutput, error)
	ListRolePolicies(context.Context, *iam.ListRolePoliciesInput, ...func(*iam.Options)) (*iam.ListRolePoliciesOutput, error)
	GetRolePolicy(context.Context, *iam.GetRolePolicyInput, ...func(*iam.Options)) (*iam.GetRolePolicyOutput, error)
	PutRolePolicy(context.Context, *iam.PutRolePolicyInput, ...func(*iam.Options)) (*iam.PutRolePolicyOutput, error)
	DeleteRolePolicy(context.Context, *iam.DeleteRolePolicyInput, ...func(*iam.Options)) (*iam.DeleteRolePolicyOutput, error)
}

// Roles implements sessions.Roles.
type Roles struct {
	api API
	log *slog.Logger

	groups    *ttlcache.Cache[string, []string]          // group name -> its policy documents
	rolesDocs *ttlcache.Cache[string, []string]          // role name -> its policy documents
	all       *ttlcache.Cache[struct{}, []sessions.Role] // every role of the account

	deniedAttached sync.Once
}

// maxCache bounds the group and role caches; past it a cache starts over.
const maxCache = 4096

// New returns the adapter. ttl bounds how long a group's policies (and the
// account's role list they are resolved against) are trusted.
func New(api API, ttl time.Duration, now func() time.Time, log *slog.Logger) *Roles {
	return &Roles{api: api, log: log, groups: ttlcache.New[string, []string](ttl, maxCache, now),
		rolesDocs: ttlcache.New[string, []string](ttl, maxCache, now),
		all:       ttlcache.New[struct{}, []sessions.Role](ttl, 1, now)}
}

var _ sessions.Roles = (*Roles)(nil)

// GroupPolicies implements sessions.Roles.
func (c *Roles) GroupPolicies(ctx context.Context, group string) ([]string, error) {
	if docs, ok := c.groups.Get(group); ok {
		return docs, nil
	}
	docs, found, err := c.documents(ctx, c.groupSource(group))
	if err != nil {
		return nil, err
	}
	if !found {
		// The group is gone: what it allowed cannot be read any more.
		c.log.WarnContext(ctx, "group deleted: the roles it let members assume cannot be found", "group", group)
	}
	c.groups.Put(group, docs)
	return docs, nil
}

// RolePolicies implements sessions.Roles.
func (c *Roles) RolePolicies(ctx context.Context, role string) ([]string, error) {
	if docs, ok := c.rolesDocs.Get(role); ok {
		return docs, nil
	}
	docs, _, err := c.documents(ctx, c.roleSource(role))
	if err != nil {
		return nil, err
	}
	c.rolesDocs.Put(role, docs)
	return docs, nil
}

// source is where an entity's policies are read: its inline policies by
// name, and the ARNs of its attached managed policies. A gone entity
// answers NoSuchEntity.
type source struct {
	kind, name string // "group" or "role", for errors
	inline     func(ctx context.Context) ([]string, error)
	get        func(ctx context.Context, policy string) (*string, error)
	attached   func(ctx context.Context) ([]string, error)
	// skip is an inline policy not read: iamjit's own, which only denies.
	skip string
	// attachedOptional: a denied attached listing leaves the managed
	// policies out (said once) instead of failing the read.
	attachedOptional bool
}

func (c *Roles) groupSource(group string) source {
	return source{kind: "group", name: group,
		inline: func(ctx context.Context) ([]string, error) {
			return pages(ctx, iam.NewListGroupPoliciesPaginator(c.api, &iam.ListGroupPoliciesInput{GroupName: &group}),
				func(o *iam.ListGroupPoliciesOutput) []string { return o.PolicyNames })
		},
		get: func(ctx context.Context, policy string) (*string, error) {
			out, err := c.api.GetGroupPolicy(ctx, &iam.GetGroupPolicyInput{GroupName: &group, PolicyName: &policy})
			if err != nil {
				return nil, err
			}
			return out.PolicyDocument, nil
		},
		attached: func(ctx context.Context) ([]string, error) {
			return pages(ctx, iam.NewListAttachedGroupPoliciesPaginator(c.api, &iam.ListAttachedGroupPoliciesInput{GroupName: &group}),
				func(o *iam.ListAttachedGroupPoliciesOutput) []string { return arns(o.AttachedPolicies) })
		},
	}
}

func (c *Roles) roleSource(role string) source {
	// A modifier role from before iamjit followed role chains may not list
	// a role's managed policies: the chain is then followed through inline
	// policies only, never an error that would keep memberships from ending.
	return source{kind: "role", name: role, skip: sessions.PolicyName, attachedOptional: true,
		inline: func(ctx context.Context) ([]string, error) {
			return pages(ctx, iam.NewListRolePoliciesPaginator(c.api, &iam.ListRolePoliciesInput{RoleName: &role}),
				func(o *iam.ListRolePoliciesOutput) []string { return o.PolicyNames })
		},
		get: func(ctx context.Context, policy string) (*string, error) {
			out, err := c.api.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: &role, PolicyName: &policy})
			if err != nil {
				return nil, err
			}
			return out.PolicyDocument, nil
		},
		attached: func(ctx context.Context) ([]string, error) {
			return pages(ctx, iam.NewListAttachedRolePoliciesPaginator(c.api, &iam.ListAttachedRolePoliciesInput{RoleName: &role}),
				func(o *iam.ListAttachedRolePoliciesOutput) []string { return arns(o.AttachedPolicies) })
		},
	}
}

// pager is what the SDK's list paginators have in common.
type pager[O any] interface {
	HasMorePages() bool
	NextPage(context.Context, ...func(*iam.Options)) (O, error)
}

// pages collects what each page of p lists.
func pages[O any](ctx context.Context, p pager[O], items func(O) []string) ([]string, error) {
	var out []string
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		out = append(out, items(page)...)
	}
	return out, nil
}

// arns are the ARNs of attached policies.
func arns(ps []types.AttachedPolicy) []string {
	var out []string
	for _, p := range ps {
		out = append(out, aws.ToString(p.PolicyArn))
	}
	return out
}

// documents returns the entity's inline policies (but src.skip) and the
// default versions of its attached managed policies; none when the entity
// is gone.
func (c *Roles) documents(ctx context.Context, src source) ([]string, bool, error) {
	var nse *types.NoSuchEntityException
	names, err := src.inline(ctx)
	if errors.As(err, &nse) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("list inline policies of %s %s: %w", src.kind, src.name, err)
	}
	var docs []string
	for _, name := range names {
		if name == src.skip {
			continue
		}
		raw, err := src.get(ctx, name)
		if errors.As(err, &nse) {
			continue // deleted while listing
		}
		if err != nil {
			return nil, false, fmt.Errorf("get policy %s of %s %s: %w", name, src.kind, src.name, err)
		}
		doc, err := decodeDoc(aws.ToString(raw))
		if err != nil {
			return nil, false, fmt.Errorf("policy %s of %s %s: %w", name, src.kind, src.name, err)
		}
		docs = append(docs, doc)
	}
	arns, err := src.attached(ctx)
	if errors.As(err, &nse) {
		return docs, true, nil
	}
	if src.attachedOptional && awsx.Denied(err) {
		c.deniedAttached.Do(func() {
			c.log.WarnContext(ctx, "iam:ListAttachedRolePolicies is denied: roles reached through a role's managed policies are not revoked (grant it on the role path to the IAM-modifier role)", "role", src.name, "err", err)
		})
		return docs, true, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("list managed policies of %s %s: %w", src.kind, src.name, err)
	}
	for _, arn := range arns {
		doc, err := c.managedDocument(ctx, arn)
		if errors.As(err, &nse) {
			continue
		}
		if err != nil {
			return nil, false, err
		}
		docs = append(docs, doc)
	}
	return docs, true, nil
}

func (c *Roles) managedDocument(ctx context.Context, arn string) (string, error) {
	p, err := c.api.GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: &arn})
	if err != nil {
		return "", fmt.Errorf("get managed policy %s: %w", arn, err)
	}
	v, err := c.api.GetPolicyVersion(ctx, &iam.GetPolicyVersionInput{PolicyArn: &arn, VersionId: p.Policy.DefaultVersionId})
	if err != nil {
		return "", fmt.Errorf("get default version of %s: %w", arn, err)
	}
	doc, err := decodeDoc(aws.ToString(v.PolicyVersion.Document))
	if err != nil {
		return "", fmt.Errorf("managed policy %s: %w", arn, err)
	}
	return doc, nil
}

// AllRoles implements sessions.Roles: every role of the account, for
// resolving the patterns of group policies.
func (c *Roles) AllRoles(ctx context.Context) ([]sessions.Role, error) {
	if roles, ok := c.all.Get(struct{}{}); ok {
		return roles, nil
	}
	roles := []sessions.Role{}
	p := iam.NewListRolesPaginator(c.api, &iam.ListRolesInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list roles: %w", err)
		}
		for _, r := range page.Roles {
			role, err := fromIAM(r)
			if err != nil {
				return nil, err
			}
			roles = append(roles, role)
		}
	}
	c.all.Put(struct{}{}, roles)
	return roles, nil
}

func fromIAM(r types.Role) (sessions.Role, error) {
	trust, err := decodeDoc(aws.ToString(r.AssumeRolePolicyDocument))
	if err != nil {
		return sessions.Role{}, fmt.Errorf("trust policy of %s: %w", aws.ToString(r.Arn), err)
	}
	msd := time.Hour // IAM's default when the field is absent
	if r.MaxSessionDuration != nil {
		msd = time.Duration(*r.MaxSessionDuration) * time.Second
	}
	return sessions.Role{ARN: aws.ToString(r.Arn), Name: aws.ToString(r.RoleName), Path: aws.ToString(r.Path),
		MaxSessionDuration: msd, Trust: trust}, nil
}

// decodeDoc undoes the URL encoding IAM puts on every policy document it
// returns (RFC 3986); a document that is already JSON is kept.
func decodeDoc(doc string) (string, error) {
	if strings.HasPrefix(strings.TrimSpace(doc), "{") || doc == "" {
		return doc, nil
	}
	out, err := url.PathUnescape(doc)
	if err != nil {
		return "", fmt.Errorf("policy document is neither JSON nor URL-encoded: %w", err)
	}
	return out, nil
}

// Role implements sessions.Roles.
func (c *Roles) Role(ctx context.Context, name string) (sessions.Role, error) {
	out, err := c.api.GetRole(ctx, &iam.GetRoleInput{RoleName: &name})
	var nse *types.NoSuchEntityException
	if errors.As(err, &nse) {
		return sessions.Role{}, sessions.ErrRoleGone
	}
	if err != nil {
		return sessions.Role{}, fmt.Errorf("get role %s: %w", name, err)
	}
	return fromIAM(*out.Role)
}

// OtherInlineSize implements sessions.Roles.
func (c *Roles) OtherInlineSize(ctx context.Context, role string) (int, error) {
	total := 0
	var nse *types.NoSuchEntityException
	p := iam.NewListRolePoliciesPaginator(c.api, &iam.ListRolePoliciesInput{RoleName: &role})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if errors.As(err, &nse) {
			return 0, sessions.ErrRoleGone
		}
		if err != nil {
			return 0, fmt.Errorf("list inline policies of role %s: %w", role, err)
		}
		for _, name := range page.PolicyNames {
			if name == sessions.PolicyName {
				continue
			}
			out, err := c.api.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: &role, PolicyName: &name})
			if errors.As(err, &nse) {
				continue
			}
			if err != nil {
				return 0, fmt.Errorf("get policy %s of role %s: %w", name, role, err)
			}
			doc, err := decodeDoc(aws.ToString(out.PolicyDocument))
			if err != nil {
				return 0, fmt.Errorf("policy %s of role %s: %w", name, role, err)
			}
			total += sessions.Size(doc)
		}
	}
	return total, nil
}

// PutPolicy implements sessions.Roles.
func (c *Roles) PutPolicy(ctx context.Context, role, doc string) (string, error) {
	out, err := c.api.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: &role, PolicyName: aws.String(sessions.PolicyName), PolicyDocument: &doc})
	var nse *types.NoSuchEntityException
	if errors.As(err, &nse) {
		return "", sessions.ErrRoleGone
	}
	// IAM's LimitExceeded here is the role's inline size quota: no room for
	// this document, which retrying does not change.
	var lim *types.LimitExceededException
	if errors.As(err, &lim) {
		return "", fmt.Errorf("put %s on role %s: %w: %w", sessions.PolicyName, role, sessions.ErrNoRoom, err)
	}
	if err != nil {
		return "", fmt.Errorf("put %s on role %s: %w", sessions.PolicyName, role, err)
	}
	return awsx.RequestID(out.ResultMetadata), nil
}

// DeletePolicy implements sessions.Roles.
func (c *Roles) DeletePolicy(ctx context.Context, role string) (string, error) {
	out, err := c.api.DeleteRolePolicy(ctx, &iam.DeleteRolePolicyInput{RoleName: &role, PolicyName: aws.String(sessions.PolicyName)})
	var nse *types.NoSuchEntityException
	if errors.As(err, &nse) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("delete %s from role %s: %w", sessions.PolicyName, role, err)
	}
	return awsx.RequestID(out.ResultMetadata), nil
}

// Policy implements sessions.Roles.
func (c *Roles) Policy(ctx context.Context, role string) (string, error) {
	out, err := c.api.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: &role, PolicyName: aws.String(sessions.PolicyName)})
	var nse *types.NoSuchEntityException
	if errors.As(err, &nse) {
		// Either the policy or the role is missing; a missing role has no
		// sessions, and a missing policy is what reconcile reports.
		if _, rerr := c.Role(ctx, role); errors.Is(rerr, sessions.ErrRoleGone) {
			return "", sessions.ErrRoleGone
		}
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("get %s of role %s: %w", sessions.PolicyName, role, err)
	}
	return decodeDoc(aws.ToString(out.PolicyDocument))
}
