package identitycenter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/identitystore"
	"github.com/aws/aws-sdk-go-v2/service/ssoadmin"

	"github.com/iamjit/iamjit/grants"
	"github.com/iamjit/iamjit/internal/awsx"
	"github.com/iamjit/iamjit/internal/ttlcache"
)

// AdminAPI is the part of the SSO Admin client iamjit calls.
type AdminAPI interface {
	ListInstances(context.Context, *ssoadmin.ListInstancesInput, ...func(*ssoadmin.Options)) (*ssoadmin.ListInstancesOutput, error)
	CreateAccountAssignment(context.Context, *ssoadmin.CreateAccountAssignmentInput, ...func(*ssoadmin.Options)) (*ssoadmin.CreateAccountAssignmentOutput, error)
	DeleteAccountAssignment(context.Context, *ssoadmin.DeleteAccountAssignmentInput, ...func(*ssoadmin.Options)) (*ssoadmin.DeleteAccountAssignmentOutput, error)
	DescribeAccountAssignmentCreationStatus(context.Context, *ssoadmin.DescribeAccountAssignmentCreationStatusInput, ...func(*ssoadmin.Options)) (*ssoadmin.DescribeAccountAssignmentCreationStatusOutput, error)
	DescribeAccountAssignmentDeletionStatus(context.Context, *ssoadmin.DescribeAccountAssignmentDeletionStatusInput, ...func(*ssoadmin.Options)) (*ssoadmin.DescribeAccountAssignmentDeletionStatusOutput, error)
	ListAccountAssignments(context.Context, *ssoadmin.ListAccountAssignmentsInput, ...func(*ssoadmin.Options)) (*ssoadmin.ListAccountAssignmentsOutput, error)
	ListAccountAssignmentsForPrincipal(context.Context, *ssoadmin.ListAccountAssignmentsForPrincipalInput, ...func(*ssoadmin.Options)) (*ssoadmin.ListAccountAssignmentsForPrincipalOutput, error)
	DescribePermissionSet(context.Context, *ssoadmin.DescribePermissionSetInput, ...func(*ssoadmin.Options)) (*ssoadmin.DescribePermissionSetOutput, error)
	GetInlinePolicyForPermissionSet(context.Context, *ssoadmin.GetInlinePolicyForPermissionSetInput, ...func(*ssoadmin.Options)) (*ssoadmin.GetInlinePolicyForPermissionSetOutput, error)
	PutInlinePolicyToPermissionSet(context.Context, *ssoadmin.PutInlinePolicyToPermissionSetInput, ...func(*ssoadmin.Options)) (*ssoadmin.PutInlinePolicyToPermissionSetOutput, error)
	DeleteInlinePolicyFromPermissionSet(context.Context, *ssoadmin.DeleteInlinePolicyFromPermissionSetInput, ...func(*ssoadmin.Options)) (*ssoadmin.DeleteInlinePolicyFromPermissionSetOutput, error)
	ProvisionPermissionSet(context.Context, *ssoadmin.ProvisionPermissionSetInput, ...func(*ssoadmin.Options)) (*ssoadmin.ProvisionPermissionSetOutput, error)
	DescribePermissionSetProvisioningStatus(context.Context, *ssoadmin.DescribePermissionSetProvisioningStatusInput, ...func(*ssoadmin.Options)) (*ssoadmin.DescribePermissionSetProvisioningStatusOutput, error)
}

// StoreAPI is the part of the Identity Store client iamjit calls.
type StoreAPI interface {
	GetUserId(context.Context, *identitystore.GetUserIdInput, ...func(*identitystore.Options)) (*identitystore.GetUserIdOutput, error)
	DescribeUser(context.Context, *identitystore.DescribeUserInput, ...func(*identitystore.Options)) (*identitystore.DescribeUserOutput, error)
	ListUsers(context.Context, *identitystore.ListUsersInput, ...func(*identitystore.Options)) (*identitystore.ListUsersOutput, error)
	DescribeGroup(context.Context, *identitystore.DescribeGroupInput, ...func(*identitystore.Options)) (*identitystore.DescribeGroupOutput, error)
	CreateGroupMembership(context.Context, *identitystore.CreateGroupMembershipInput, ...func(*identitystore.Options)) (*identitystore.CreateGroupMembershipOutput, error)
	DeleteGroupMembership(context.Context, *identitystore.DeleteGroupMembershipInput, ...func(*identitystore.Options)) (*identitystore.DeleteGroupMembershipOutput, error)
	ListGroupMemberships(context.Context, *identitystore.ListGroupMembershipsInput, ...func(*identitystore.Options)) (*identitystore.ListGroupMembershipsOutput, error)
	ListGroupMembershipsForMember(context.Context, *identitystore.ListGroupMembershipsForMemberInput, ...func(*identitystore.Options)) (*identitystore.ListGroupMembershipsForMemberOutput, error)
}

// Backoff bounds the polling of an asynchronous request's status.
type Backoff struct {
	Initial time.Duration // first wait
	Max     time.Duration // longest single wait; waits double up to it
	Total   time.Duration // give up (retryably) once this much has passed
}

// DefaultBackoff suits account assignments, which AWS usually confirms in
// seconds; a request still running after Total is left to the caller's
// retry, whose read sees it once it is done.
var DefaultBackoff = Backoff{Initial: 200 * time.Millisecond, Max: 5 * time.Second, Total: 2 * time.Minute}

// Options are what New needs besides the AWS clients; zero fields take
// defaults.
type Options struct {
	// TTL bounds how long a user found for an email, the index of every
	// user's emails and a permission set's description are trusted.
	TTL     time.Duration
	Now     func() time.Time
	Sleep   func(context.Context, time.Duration) error // context-aware
	Backoff Backoff
	Log     *slog.Logger
}

// Client is the Identity Center adapter. Build it once with New, then call
// Discover before anything else: every other method acts on the instance
// Discover found.
type Client struct {
	admin   AdminAPI
	store   StoreAPI
	now     func() time.Time
	sleep   func(context.Context, time.Duration) error
	backoff Backoff
	ttl     time.Duration
	log     *slog.Logger
	inst    atomic.Pointer[instance]

	users    *ttlcache.Cache[string, User]
	permSets *ttlcache.Cache[string, PermissionSet]
	emails   emailIndex
}

type instance struct{ arn, storeID string }

// maxCache bounds each cache; past it the cache starts over.
const maxCache = 4096

// New builds the adapter's SSO Admin and Identity Store clients from cfg
// (the chained role's configuration).
func New(cfg aws.Config, opts Options) *Client {
	return NewFromAPIs(ssoadmin.NewFromConfig(cfg), identitystore.NewFromConfig(cfg), opts)
}

// NewFromAPIs is New with the clients given: tests pass fakes.
func NewFromAPIs(admin AdminAPI, store StoreAPI, opts Options) *Client {
	if opts.TTL <= 0 {
		opts.TTL = 5 * time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Sleep == nil {
		opts.Sleep = awsx.Sleep
	}
	if opts.Backoff == (Backoff{}) {
		opts.Backoff = DefaultBackoff
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	return &Client{admin: admin, store: store, now: opts.Now, sleep: opts.Sleep, backoff: opts.Backoff, ttl: opts.TTL, log: opts.Log,
		users:    ttlcache.New[string, User](opts.TTL, maxCache, opts.Now),
		permSets: ttlcache.New[string, PermissionSet](opts.TTL, maxCache, opts.Now)}
}

// Discover finds the instance among those the credentials can read
// (ListInstances; moto 5.2.1 has no DescribeInstance, and lists one instance
// per account and region that exists from the start) and returns its
// Identity Store id. The client acts on that instance from then on.
func (c *Client) Discover(ctx context.Context, instanceARN string) (string, error) {
	if !IsInstanceARN(instanceARN) {
		return "", fmt.Errorf("%q is not an Identity Center instance ARN (arn:aws:sso:::instance/ssoins-...)", instanceARN)
	}
	p := ssoadmin.NewListInstancesPaginator(c.admin, &ssoadmin.ListInstancesInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return "", fmt.Errorf("list Identity Center instances (looking for %s): %w", instanceARN, err)
		}
		for _, in := range page.Instances {
			if aws.ToString(in.InstanceArn) != instanceARN {
				continue
			}
			id := aws.ToString(in.IdentityStoreId)
			if !IsIdentityStoreID(id) {
				return "", fmt.Errorf("instance %s: identity store id %q is malformed", instanceARN, id)
			}
			c.inst.Store(&instance{arn: instanceARN, storeID: id})
			return id, nil
		}
	}
	return "", fmt.Errorf("instance %s is not among the Identity Center instances these credentials can list", instanceARN)
}

// instance is the discovered instance, or an error before Discover.
func (c *Client) instance() (*instance, error) {
	in := c.inst.Load()
	if in == nil {
		return nil, errors.New("identity center: no instance discovered (call Discover first)")
	}
	return in, nil
}

// NotFoundError says a permission set, group or user does not exist. It is
// grants.ErrNotFound for errors.Is.
type NotFoundError struct {
	Kind, ID string
	Err      error // AWS's answer
}

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("%s %s not found: %v", e.Kind, e.ID, e.Err)
}
func (e *NotFoundError) Unwrap() error        { return e.Err }
func (e *NotFoundError) Is(target error) bool { return target == grants.ErrNotFound }
