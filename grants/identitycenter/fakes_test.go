package identitycenter_test

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/identitystore"
	istypes "github.com/aws/aws-sdk-go-v2/service/identitystore/types"
	"github.com/aws/aws-sdk-go-v2/service/ssoadmin"
	"github.com/aws/aws-sdk-go-v2/service/ssoadmin/types"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/iamjit/iamjit/grants/identitycenter"
	"github.com/iamjit/iamjit/internal/testclock"
)

// AWS-form identifiers for the fakes.
const (
	instanceARN = "arn:aws:sso:::instance/ssoins-722328f0b7b1e6d7"
	storeID     = "d-9067a1b2c3"
	psARN       = "arn:aws:sso:::permissionSet/ssoins-722328f0b7b1e6d7/ps-2f1a9e4c6b8d0a35"
	account     = "111122223333"
	userID      = "906782a1b2-0c1d2e3f-4a5b-6c7d-8e9f-0a1b2c3d4e5f"
	groupID     = "906782a1b2-1c1d2e3f-4a5b-6c7d-8e9f-0a1b2c3d4e5f"
)

// reply is one scripted answer to a status call.
type reply struct {
	status types.StatusValues
	reason string
	err    error
	flip   bool // someone else changes the assignment as this is served
}

// assignKey is one account assignment of a user; moto stores any number of
// copies of one.
type assignKey struct{ ps, account, user string }

// fakeAdmin is SSO Admin as far as the tests need it. The embedded nil
// interface makes any call a test did not expect fail loudly.
type fakeAdmin struct {
	identitycenter.AdminAPI
	mu        sync.Mutex
	instances [][]types.InstanceMetadata // pages
	assigned  map[assignKey]int          // copies of each USER assignment, as moto keeps them
	// create/remove answer Create/DeleteAccountAssignment; nil: succeed
	// with the first status of creation/deletion and change assigned.
	createErr, deleteErr error
	creation, deletion   []reply // served in order; the first is the start call's
	calls                []string
	filters              []string // each ListAccountAssignmentsForPrincipal's Filter.AccountId ("" without one)
}

func newFakeAdmin() *fakeAdmin {
	return &fakeAdmin{assigned: map[assignKey]int{},
		instances: [][]types.InstanceMetadata{{{InstanceArn: aws.String(instanceARN), IdentityStoreId: aws.String(storeID)}}}}
}

// set makes the user hold n copies of psARN in account.
func (f *fakeAdmin) set(user string, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.assigned[assignKey{psARN, account, user}] = n
}

// held is how many copies of psARN in account the user holds.
func (f *fakeAdmin) held(user string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.assigned[assignKey{psARN, account, user}]
}

// add changes the copies of psARN in account the user holds by d, never
// below none.
func (f *fakeAdmin) add(user string, d int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := assignKey{psARN, account, user}
	f.assigned[k] = max(f.assigned[k]+d, 0)
}

func (f *fakeAdmin) record(call string) {
	f.mu.Lock()
	f.calls = append(f.calls, call)
	f.mu.Unlock()
}

// count is how many times call was made.
func (f *fakeAdmin) count(call string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if c == call {
			n++
		}
	}
	return n
}

func (f *fakeAdmin) next(q *[]reply) reply {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(*q) == 0 {
		return reply{status: types.StatusValuesSucceeded}
	}
	r := (*q)[0]
	*q = (*q)[1:]
	return r
}

func (f *fakeAdmin) ListInstances(_ context.Context, in *ssoadmin.ListInstancesInput, _ ...func(*ssoadmin.Options)) (*ssoadmin.ListInstancesOutput, error) {
	f.record("ListInstances")
	page := 0
	if in.NextToken != nil {
		page = int((*in.NextToken)[0] - '0')
	}
	out := &ssoadmin.ListInstancesOutput{Instances: f.instances[page]}
	if page+1 < len(f.instances) {
		out.NextToken = aws.String(string(rune('0' + page + 1)))
	}
	return out, nil
}

// ListAccountAssignments lists every copy of every USER assignment of the
// permission set in the account.
func (f *fakeAdmin) ListAccountAssignments(_ context.Context, in *ssoadmin.ListAccountAssignmentsInput, _ ...func(*ssoadmin.Options)) (*ssoadmin.ListAccountAssignmentsOutput, error) {
	f.record("ListAccountAssignments")
	f.mu.Lock()
	defer f.mu.Unlock()
	out := &ssoadmin.ListAccountAssignmentsOutput{}
	for k, n := range f.assigned {
		if k.ps != *in.PermissionSetArn || k.account != *in.AccountId {
			continue
		}
		for range n {
			out.AccountAssignments = append(out.AccountAssignments, types.AccountAssignment{
				PrincipalType: types.PrincipalTypeUser, PrincipalId: aws.String(k.user), PermissionSetArn: in.PermissionSetArn, AccountId: in.AccountId})
		}
	}
	return out, nil
}

// ListAccountAssignmentsForPrincipal lists every copy of the user's
// assignments, only those in Filter.AccountId when it is set (as AWS and
// moto 5.2.1 do), one a page, to prove the reader paginates.
func (f *fakeAdmin) ListAccountAssignmentsForPrincipal(_ context.Context, in *ssoadmin.ListAccountAssignmentsForPrincipalInput, _ ...func(*ssoadmin.Options)) (*ssoadmin.ListAccountAssignmentsForPrincipalOutput, error) {
	f.record("ListAccountAssignmentsForPrincipal")
	f.mu.Lock()
	defer f.mu.Unlock()
	filter := ""
	if in.Filter != nil {
		filter = aws.ToString(in.Filter.AccountId)
	}
	if in.NextToken == nil {
		f.filters = append(f.filters, filter)
	}
	var all []types.AccountAssignmentForPrincipal
	for _, k := range slices.SortedFunc(maps.Keys(f.assigned), func(a, b assignKey) int {
		return cmp.Or(cmp.Compare(a.ps, b.ps), cmp.Compare(a.account, b.account), cmp.Compare(a.user, b.user))
	}) {
		if in.PrincipalType != types.PrincipalTypeUser || k.user != *in.PrincipalId || filter != "" && k.account != filter {
			continue
		}
		for range f.assigned[k] {
			all = append(all, types.AccountAssignmentForPrincipal{PrincipalType: types.PrincipalTypeUser,
				PrincipalId: aws.String(k.user), PermissionSetArn: aws.String(k.ps), AccountId: aws.String(k.account)})
		}
	}
	i := 0
	if in.NextToken != nil {
		i, _ = strconv.Atoi(*in.NextToken)
	}
	out := &ssoadmin.ListAccountAssignmentsForPrincipalOutput{}
	if i < len(all) {
		out.AccountAssignments = all[i : i+1]
	}
	if i+1 < len(all) {
		out.NextToken = aws.String(strconv.Itoa(i + 1))
	}
	return out, nil
}

// CreateAccountAssignment stores another copy when it succeeds at once, as
// moto 5.2.1 does.
func (f *fakeAdmin) CreateAccountAssignment(_ context.Context, in *ssoadmin.CreateAccountAssignmentInput, _ ...func(*ssoadmin.Options)) (*ssoadmin.CreateAccountAssignmentOutput, error) {
	f.record("CreateAccountAssignment")
	if f.createErr != nil {
		return nil, f.createErr
	}
	r := f.next(&f.creation)
	if r.status == types.StatusValuesSucceeded {
		f.add(*in.PrincipalId, 1)
	}
	return &ssoadmin.CreateAccountAssignmentOutput{AccountAssignmentCreationStatus: &types.AccountAssignmentOperationStatus{
		RequestId: aws.String("create-1"), Status: r.status, FailureReason: aws.String(r.reason)}}, nil
}

func (f *fakeAdmin) DescribeAccountAssignmentCreationStatus(_ context.Context, in *ssoadmin.DescribeAccountAssignmentCreationStatusInput, _ ...func(*ssoadmin.Options)) (*ssoadmin.DescribeAccountAssignmentCreationStatusOutput, error) {
	f.record("DescribeAccountAssignmentCreationStatus")
	r := f.next(&f.creation)
	if r.err != nil {
		return nil, r.err
	}
	switch {
	case r.status == types.StatusValuesSucceeded:
		f.add(userID, 1)
	case r.flip && f.held(userID) == 0:
		f.set(userID, 1)
	}
	return &ssoadmin.DescribeAccountAssignmentCreationStatusOutput{AccountAssignmentCreationStatus: &types.AccountAssignmentOperationStatus{
		RequestId: in.AccountAssignmentCreationRequestId, Status: r.status, FailureReason: aws.String(r.reason)}}, nil
}

// DeleteAccountAssignment removes one copy when it succeeds at once, and
// answers ResourceNotFoundException where there is none, as moto 5.2.1
// does. Each call's request id is delete-1, delete-2, ...
func (f *fakeAdmin) DeleteAccountAssignment(_ context.Context, in *ssoadmin.DeleteAccountAssignmentInput, _ ...func(*ssoadmin.Options)) (*ssoadmin.DeleteAccountAssignmentOutput, error) {
	f.record("DeleteAccountAssignment")
	if f.deleteErr != nil {
		return nil, f.deleteErr
	}
	if f.held(*in.PrincipalId) == 0 {
		return nil, &types.ResourceNotFoundException{Message: aws.String("no such assignment")}
	}
	r := f.next(&f.deletion)
	if r.status == types.StatusValuesSucceeded {
		f.add(*in.PrincipalId, -1)
	}
	id := "delete-" + strconv.Itoa(f.count("DeleteAccountAssignment"))
	return &ssoadmin.DeleteAccountAssignmentOutput{AccountAssignmentDeletionStatus: &types.AccountAssignmentOperationStatus{
		RequestId: aws.String(id), Status: r.status, FailureReason: aws.String(r.reason)}}, nil
}

func (f *fakeAdmin) DescribeAccountAssignmentDeletionStatus(_ context.Context, in *ssoadmin.DescribeAccountAssignmentDeletionStatusInput, _ ...func(*ssoadmin.Options)) (*ssoadmin.DescribeAccountAssignmentDeletionStatusOutput, error) {
	f.record("DescribeAccountAssignmentDeletionStatus")
	r := f.next(&f.deletion)
	if r.err != nil {
		return nil, r.err
	}
	switch {
	case r.flip:
		f.set(userID, 0) // someone else removed it, every copy
	case r.status == types.StatusValuesSucceeded:
		f.add(userID, -1)
	}
	return &ssoadmin.DescribeAccountAssignmentDeletionStatusOutput{AccountAssignmentDeletionStatus: &types.AccountAssignmentOperationStatus{
		RequestId: in.AccountAssignmentDeletionRequestId, Status: r.status, FailureReason: aws.String(r.reason)}}, nil
}

// fakeStore is the Identity Store as far as the tests need it.
type fakeStore struct {
	identitycenter.StoreAPI
	mu          sync.Mutex
	getUserID   func(email string) (string, error)
	users       []istypes.User
	memberships []istypes.GroupMembership
	createErr   error
	deleteErr   error
	calls       map[string]int
}

func (f *fakeStore) record(call string) {
	f.mu.Lock()
	if f.calls == nil {
		f.calls = map[string]int{}
	}
	f.calls[call]++
	f.mu.Unlock()
}

func (f *fakeStore) count(call string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[call]
}

func (f *fakeStore) GetUserId(_ context.Context, in *identitystore.GetUserIdInput, _ ...func(*identitystore.Options)) (*identitystore.GetUserIdOutput, error) {
	f.record("GetUserId")
	var email string
	b, err := in.AlternateIdentifier.(*istypes.AlternateIdentifierMemberUniqueAttribute).Value.AttributeValue.MarshalSmithyDocument()
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &email); err != nil {
		return nil, err
	}
	id, err := f.getUserID(email)
	if err != nil {
		return nil, err
	}
	return &identitystore.GetUserIdOutput{UserId: &id, IdentityStoreId: in.IdentityStoreId}, nil
}

func (f *fakeStore) DescribeUser(_ context.Context, in *identitystore.DescribeUserInput, _ ...func(*identitystore.Options)) (*identitystore.DescribeUserOutput, error) {
	f.record("DescribeUser")
	for _, u := range f.users {
		if *u.UserId == *in.UserId {
			return &identitystore.DescribeUserOutput{UserId: u.UserId, UserName: u.UserName, Emails: u.Emails}, nil
		}
	}
	return nil, &istypes.ResourceNotFoundException{Message: aws.String("USER not found.")}
}

// ListUsers answers one user a page, to prove the scan paginates.
func (f *fakeStore) ListUsers(_ context.Context, in *identitystore.ListUsersInput, _ ...func(*identitystore.Options)) (*identitystore.ListUsersOutput, error) {
	f.record("ListUsers")
	i := 0
	if in.NextToken != nil {
		i = int((*in.NextToken)[0] - '0')
	}
	out := &identitystore.ListUsersOutput{}
	if i < len(f.users) {
		out.Users = f.users[i : i+1]
	}
	if i+1 < len(f.users) {
		out.NextToken = aws.String(string(rune('0' + i + 1)))
	}
	return out, nil
}

func (f *fakeStore) ListGroupMembershipsForMember(_ context.Context, in *identitystore.ListGroupMembershipsForMemberInput, _ ...func(*identitystore.Options)) (*identitystore.ListGroupMembershipsForMemberOutput, error) {
	f.record("ListGroupMembershipsForMember")
	f.mu.Lock()
	defer f.mu.Unlock()
	out := &identitystore.ListGroupMembershipsForMemberOutput{}
	for _, m := range f.memberships {
		if m.MemberId.(*istypes.MemberIdMemberUserId).Value == in.MemberId.(*istypes.MemberIdMemberUserId).Value {
			out.GroupMemberships = append(out.GroupMemberships, m)
		}
	}
	return out, nil
}

func (f *fakeStore) CreateGroupMembership(_ context.Context, in *identitystore.CreateGroupMembershipInput, _ ...func(*identitystore.Options)) (*identitystore.CreateGroupMembershipOutput, error) {
	f.record("CreateGroupMembership")
	if f.createErr != nil {
		return nil, f.createErr
	}
	f.mu.Lock()
	f.memberships = append(f.memberships, istypes.GroupMembership{GroupId: in.GroupId, MemberId: in.MemberId, MembershipId: aws.String("m-new")})
	f.mu.Unlock()
	return &identitystore.CreateGroupMembershipOutput{MembershipId: aws.String("m-new")}, nil
}

// DeleteGroupMembership removes the membership of that id; its request id
// is "req-" and the membership id.
func (f *fakeStore) DeleteGroupMembership(_ context.Context, in *identitystore.DeleteGroupMembershipInput, _ ...func(*identitystore.Options)) (*identitystore.DeleteGroupMembershipOutput, error) {
	f.record("DeleteGroupMembership")
	if f.deleteErr != nil {
		return nil, f.deleteErr
	}
	f.mu.Lock()
	f.memberships = slices.DeleteFunc(f.memberships, func(m istypes.GroupMembership) bool { return *m.MembershipId == *in.MembershipId })
	f.mu.Unlock()
	out := &identitystore.DeleteGroupMembershipOutput{}
	awsmiddleware.SetRequestIDMetadata(&out.ResultMetadata, "req-"+*in.MembershipId)
	return out, nil
}

// sleeper is the injected sleep: it advances the clock by each wait and
// records it, so a test sees the backoff without waiting.
type sleeper struct {
	clock *testclock.Clock
	mu    sync.Mutex
	waits []time.Duration
}

func (s *sleeper) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	s.waits = append(s.waits, d)
	s.mu.Unlock()
	s.clock.Advance(d)
	return nil
}

// serverError is an HTTP 500 with no modeled AWS error: what the SDK makes
// of moto's HTML error page.
func serverError() error {
	return &awshttp.ResponseError{ResponseError: &smithyhttp.ResponseError{
		Response: &smithyhttp.Response{Response: &http.Response{StatusCode: 500}}, Err: errors.New("internal server error")}}
}

// provisioner is SSO Admin's provisioning as far as the tests need it.
type provisioner struct {
	*fakeAdmin
	replies []reply // the first is ProvisionPermissionSet's
	err     error   // ProvisionPermissionSet's error
}

func (p *provisioner) ProvisionPermissionSet(_ context.Context, in *ssoadmin.ProvisionPermissionSetInput, _ ...func(*ssoadmin.Options)) (*ssoadmin.ProvisionPermissionSetOutput, error) {
	p.record("ProvisionPermissionSet")
	if p.err != nil {
		return nil, p.err
	}
	r := p.next(&p.replies)
	return &ssoadmin.ProvisionPermissionSetOutput{PermissionSetProvisioningStatus: &types.PermissionSetProvisioningStatus{
		RequestId: aws.String("prov-1"), Status: r.status, FailureReason: aws.String(r.reason), AccountId: in.TargetId}}, nil
}

func (p *provisioner) DescribePermissionSetProvisioningStatus(_ context.Context, in *ssoadmin.DescribePermissionSetProvisioningStatusInput, _ ...func(*ssoadmin.Options)) (*ssoadmin.DescribePermissionSetProvisioningStatusOutput, error) {
	p.record("DescribePermissionSetProvisioningStatus")
	r := p.next(&p.replies)
	if r.err != nil {
		return nil, r.err
	}
	return &ssoadmin.DescribePermissionSetProvisioningStatusOutput{PermissionSetProvisioningStatus: &types.PermissionSetProvisioningStatus{
		RequestId: in.ProvisionPermissionSetRequestId, Status: r.status, FailureReason: aws.String(r.reason)}}, nil
}
