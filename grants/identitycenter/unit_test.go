package identitycenter_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	istypes "github.com/aws/aws-sdk-go-v2/service/identitystore/types"
	"github.com/aws/aws-sdk-go-v2/service/ssoadmin"
	"github.com/aws/aws-sdk-go-v2/service/ssoadmin/types"

	"github.com/iamjit/iamjit/grants"
	"github.com/iamjit/iamjit/grants/identitycenter"
	"github.com/iamjit/iamjit/internal/awsx"
	"github.com/iamjit/iamjit/internal/testclock"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// fixture is a discovered client over fakes, with a recording sleep.
func fixture(t *testing.T, admin identitycenter.AdminAPI, store *fakeStore) (*identitycenter.Client, *sleeper) {
	t.Helper()
	clock := testclock.New(t0)
	s := &sleeper{clock: clock}
	c := identitycenter.NewFromAPIs(admin, store, identitycenter.Options{TTL: 10 * time.Minute, Now: clock.Now, Sleep: s.Sleep,
		Backoff: identitycenter.Backoff{Initial: 200 * time.Millisecond, Max: 5 * time.Second, Total: 30 * time.Second}})
	if _, err := c.Discover(context.Background(), instanceARN); err != nil {
		t.Fatal(err)
	}
	return c, s
}

var asg = identitycenter.Assignment{PermissionSetARN: psARN, AccountID: account, UserID: userID}

func TestAssignPollsUntilSucceeded(t *testing.T) {
	admin := newFakeAdmin()
	admin.creation = []reply{{status: types.StatusValuesInProgress}, {status: types.StatusValuesInProgress}, {status: types.StatusValuesSucceeded}}
	c, s := fixture(t, admin, &fakeStore{})
	id, err := c.Assign(context.Background(), asg)
	if err != nil {
		t.Fatal(err)
	}
	if id != "create-1" { // the fake's responses carry no HTTP request id
		t.Errorf("request id %q, want the assignment request id", id)
	}
	if want := []time.Duration{200 * time.Millisecond, 400 * time.Millisecond}; !slices.Equal(s.waits, want) {
		t.Errorf("waits %v, want %v", s.waits, want)
	}
	if admin.held(userID) != 1 {
		t.Error("not assigned")
	}
}

func TestAssignFailedCarriesTheReason(t *testing.T) {
	admin := newFakeAdmin()
	admin.creation = []reply{{status: types.StatusValuesInProgress}, {status: types.StatusValuesFailed, reason: "Received a 403 status error: the role is protected"}}
	c, _ := fixture(t, admin, &fakeStore{})
	_, err := c.Assign(context.Background(), asg)
	var failed *identitycenter.FailedError
	if !errors.As(err, &failed) || failed.Reason != "Received a 403 status error: the role is protected" || failed.RequestID != "create-1" {
		t.Fatalf("err %v, want a FailedError carrying AWS's reason", err)
	}
	if !strings.Contains(err.Error(), "the role is protected") {
		t.Errorf("message %q lacks the reason", err)
	}
	if awsx.Retryable(err) {
		t.Error("a FAILED assignment is not retryable by itself")
	}
}

func TestAssignFailedButAssignedMeanwhileIsSuccess(t *testing.T) {
	admin := newFakeAdmin()
	// Another replica's assignment lands while ours fails.
	admin.creation = []reply{{status: types.StatusValuesInProgress}, {status: types.StatusValuesFailed, reason: "conflict", flip: true}}
	c, _ := fixture(t, admin, &fakeStore{})
	id, err := c.Assign(context.Background(), asg)
	if err != nil || id != "" {
		t.Fatalf("Assign = %q, %v; want success with nothing changed by us", id, err)
	}
}

func TestAssignThrottledIsRetryable(t *testing.T) {
	admin := newFakeAdmin()
	admin.createErr = &types.ThrottlingException{Message: aws.String("Rate exceeded")}
	c, _ := fixture(t, admin, &fakeStore{})
	_, err := c.Assign(context.Background(), asg)
	var th *types.ThrottlingException
	if !errors.As(err, &th) || !awsx.Retryable(err) {
		t.Fatalf("err %v: want a retryable ThrottlingException", err)
	}
	if !strings.Contains(err.Error(), userID) {
		t.Errorf("err %q does not say what was being done", err)
	}
}

func TestStatusPollingWaitsOutThrottling(t *testing.T) {
	admin := newFakeAdmin()
	admin.creation = []reply{{status: types.StatusValuesInProgress}, {err: &types.ThrottlingException{}}, {status: types.StatusValuesSucceeded}}
	c, s := fixture(t, admin, &fakeStore{})
	if _, err := c.Assign(context.Background(), asg); err != nil {
		t.Fatal(err)
	}
	if len(s.waits) != 2 {
		t.Errorf("waits %v: want one after IN_PROGRESS and one after the throttled read", s.waits)
	}
}

func TestStatusPollingGivesUpRetryablyAfterTotal(t *testing.T) {
	admin := newFakeAdmin()
	for range 100 {
		admin.creation = append(admin.creation, reply{status: types.StatusValuesInProgress})
	}
	c, s := fixture(t, admin, &fakeStore{})
	_, err := c.Assign(context.Background(), asg)
	var tr *awsx.Transient
	if !errors.As(err, &tr) || !awsx.Retryable(err) {
		t.Fatalf("err %v: want a retryable timeout", err)
	}
	var total time.Duration
	for _, w := range s.waits {
		total += w
		if w > 5*time.Second {
			t.Errorf("wait %s is over the 5s cap", w)
		}
	}
	if total > 30*time.Second || total < 20*time.Second {
		t.Errorf("waited %s in all (%v), want close to but within the 30s bound", total, s.waits)
	}
}

func TestStatusPollingStopsWithTheContext(t *testing.T) {
	admin := newFakeAdmin()
	admin.creation = []reply{{status: types.StatusValuesInProgress}}
	c, _ := fixture(t, admin, &fakeStore{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// The read before the create would fail on a cancelled context with a
	// real client; the fakes ignore it, so the sleep is what notices.
	if _, err := c.Assign(ctx, asg); !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
}

func TestAssignAlreadyAssignedCallsNothing(t *testing.T) {
	admin := newFakeAdmin()
	admin.set(userID, 1)
	c, _ := fixture(t, admin, &fakeStore{})
	id, err := c.Assign(context.Background(), asg)
	if err != nil || id != "" {
		t.Fatalf("Assign = %q, %v", id, err)
	}
	if slices.Contains(admin.calls, "CreateAccountAssignment") {
		t.Error("created an assignment that exists (moto would store a copy)")
	}
}

func TestAssignConflict(t *testing.T) {
	t.Run("still unassigned: retryable", func(t *testing.T) {
		admin := newFakeAdmin()
		c, _ := fixture(t, admin, &fakeStore{})
		admin.createErr = &types.ConflictException{Message: aws.String("a previous write has not propagated")}
		if _, err := c.Assign(context.Background(), asg); !awsx.Retryable(err) {
			t.Fatalf("err %v: a conflict with the user still unassigned is retryable", err)
		}
	})
	t.Run("conflict then assigned by the other writer", func(t *testing.T) {
		admin := newFakeAdmin()
		c, _ := fixture(t, admin, &fakeStore{})
		admin.createErr = conflictThatAssigns{admin}
		if id, err := c.Assign(context.Background(), asg); err != nil || id != "" {
			t.Fatalf("Assign = %q, %v; want success: the second read finds it", id, err)
		}
	})
}

// conflictThatAssigns is a ConflictException whose writer's assignment is
// visible by the time it is read again.
type conflictThatAssigns struct{ f *fakeAdmin }

func (c conflictThatAssigns) Error() string { return "ConflictException" }
func (c conflictThatAssigns) As(target any) bool {
	if p, ok := target.(**types.ConflictException); ok {
		c.f.set(userID, 1)
		*p = &types.ConflictException{}
		return true
	}
	return false
}

func TestUnassign(t *testing.T) {
	t.Run("not assigned: nothing deleted", func(t *testing.T) {
		admin := newFakeAdmin()
		c, _ := fixture(t, admin, &fakeStore{})
		if id, err := c.Unassign(context.Background(), asg); err != nil || id != "" {
			t.Fatalf("Unassign = %q, %v", id, err)
		}
		if slices.Contains(admin.calls, "DeleteAccountAssignment") {
			t.Error("deleted an assignment that does not exist")
		}
	})
	t.Run("polls until deleted", func(t *testing.T) {
		admin := newFakeAdmin()
		admin.set(userID, 1)
		admin.deletion = []reply{{status: types.StatusValuesInProgress}, {status: types.StatusValuesSucceeded}}
		c, s := fixture(t, admin, &fakeStore{})
		if id, err := c.Unassign(context.Background(), asg); err != nil || id != "delete-1" {
			t.Fatalf("Unassign = %q, %v", id, err)
		}
		if admin.held(userID) != 0 || len(s.waits) != 1 {
			t.Errorf("%d copies left after %v", admin.held(userID), s.waits)
		}
	})
	t.Run("not found on delete is success", func(t *testing.T) {
		admin := newFakeAdmin()
		admin.set(userID, 1)
		c, _ := fixture(t, admin, &fakeStore{})
		admin.deleteErr = notFoundThatDeletes{admin}
		if id, err := c.Unassign(context.Background(), asg); err != nil || id != "" {
			t.Fatalf("Unassign = %q, %v", id, err)
		}
	})
	t.Run("failed and still assigned", func(t *testing.T) {
		admin := newFakeAdmin()
		admin.set(userID, 1)
		admin.deletion = []reply{{status: types.StatusValuesFailed, reason: "boom"}}
		c, _ := fixture(t, admin, &fakeStore{})
		var failed *identitycenter.FailedError
		if _, err := c.Unassign(context.Background(), asg); !errors.As(err, &failed) || failed.Reason != "boom" {
			t.Fatalf("err %v", err)
		}
	})
}

// IsAssigned reads the user's side, filtered to the account, never the
// permission set's every assignment: another permission set of the user in
// the account, the same one in another account, and other users' do not
// count, and every page is read.
func TestIsAssignedReadsTheUsersSide(t *testing.T) {
	admin := newFakeAdmin()
	const otherPS = "arn:aws:sso:::permissionSet/ssoins-722328f0b7b1e6d7/ps-0000000000000001"
	const otherPS2 = "arn:aws:sso:::permissionSet/ssoins-722328f0b7b1e6d7/ps-0000000000000002"
	// Both sort before psARN in the fake's pages: the match is on the last.
	admin.assigned[assignKey{otherPS, account, userID}] = 1
	admin.assigned[assignKey{otherPS2, account, userID}] = 1
	admin.assigned[assignKey{psARN, "444455556666", userID}] = 1
	for i := range 5 {
		admin.assigned[assignKey{psARN, account, "other-" + strconv.Itoa(i)}] = 1
	}
	c, _ := fixture(t, admin, &fakeStore{})
	if ok, err := c.IsAssigned(context.Background(), asg); err != nil || ok {
		t.Fatalf("IsAssigned = %v, %v; want false: only another set here and this set elsewhere", ok, err)
	}
	admin.set(userID, 1)
	if ok, err := c.IsAssigned(context.Background(), asg); err != nil || !ok {
		t.Fatalf("IsAssigned = %v, %v; want true", ok, err)
	}
	if n := admin.count("ListAccountAssignments"); n != 0 {
		t.Errorf("ListAccountAssignments called %d times: the read is O(the permission set's assignments)", n)
	}
	// The fake answers one assignment a page: the user held two in the
	// account, then three (the match last).
	if n := admin.count("ListAccountAssignmentsForPrincipal"); n != 2+3 {
		t.Errorf("ListAccountAssignmentsForPrincipal called %d times, want 5 (two pages, then three)", n)
	}
	if want := []string{account, account}; !slices.Equal(admin.filters, want) {
		t.Errorf("filters %q, want %q: each read filtered to the assignment's account", admin.filters, want)
	}
}

func TestIsAssignedUnknownUserHoldsNothing(t *testing.T) {
	c, _ := fixture(t, principalNotFound{newFakeAdmin()}, &fakeStore{})
	if ok, err := c.IsAssigned(context.Background(), asg); err != nil || ok {
		t.Fatalf("IsAssigned = %v, %v; want false", ok, err)
	}
}

// principalNotFound answers ListAccountAssignmentsForPrincipal with
// ResourceNotFoundException, as for a user AWS does not know.
type principalNotFound struct{ *fakeAdmin }

func (p principalNotFound) ListAccountAssignmentsForPrincipal(context.Context, *ssoadmin.ListAccountAssignmentsForPrincipalInput, ...func(*ssoadmin.Options)) (*ssoadmin.ListAccountAssignmentsForPrincipalOutput, error) {
	return nil, &types.ResourceNotFoundException{Message: aws.String("principal not found")}
}

func TestUnassignEveryCopy(t *testing.T) {
	t.Run("one copy (AWS): one read, one delete", func(t *testing.T) {
		admin := newFakeAdmin()
		admin.set(userID, 1)
		c, _ := fixture(t, admin, &fakeStore{})
		if id, err := c.Unassign(context.Background(), asg); err != nil || id != "delete-1" {
			t.Fatalf("Unassign = %q, %v", id, err)
		}
		if d, r := admin.count("DeleteAccountAssignment"), admin.count("ListAccountAssignmentsForPrincipal"); d != 1 || r != 1 || admin.held(userID) != 0 {
			t.Errorf("%d deletes, %d reads, %d copies left; want 1, 1, 0", d, r, admin.held(userID))
		}
	})
	t.Run("two copies (moto): both deleted, the first's request id", func(t *testing.T) {
		admin := newFakeAdmin()
		admin.set(userID, 2)
		c, _ := fixture(t, admin, &fakeStore{})
		if id, err := c.Unassign(context.Background(), asg); err != nil || id != "delete-1" {
			t.Fatalf("Unassign = %q, %v; want the first delete's request id", id, err)
		}
		if d := admin.count("DeleteAccountAssignment"); d != 2 || admin.held(userID) != 0 {
			t.Errorf("%d deletes, %d copies left; want 2, 0", d, admin.held(userID))
		}
		// The count, then one read that finds none.
		if r := admin.count("ListAccountAssignmentsForPrincipal"); r != 2+1 {
			t.Errorf("%d reads, want 3 (two copies a page each, then none)", r)
		}
		if slices.Contains(admin.calls, "ListAccountAssignments") {
			t.Error("read the permission set's every assignment")
		}
	})
	t.Run("copies that keep coming back: bounded, retryable", func(t *testing.T) {
		admin := newFakeAdmin()
		admin.set(userID, 2)
		c, _ := fixture(t, regrowing{admin}, &fakeStore{})
		_, err := c.Unassign(context.Background(), asg)
		if !awsx.Retryable(err) || !strings.Contains(err.Error(), "copies left") {
			t.Fatalf("err %v, want a retryable error saying copies are left", err)
		}
		if d := admin.count("DeleteAccountAssignment"); d != 2 {
			t.Errorf("%d deletes, want 2: never more than the copies counted", d)
		}
	})
	t.Run("a failed delete with copies left fails", func(t *testing.T) {
		admin := newFakeAdmin()
		admin.set(userID, 2)
		admin.deletion = []reply{{status: types.StatusValuesFailed, reason: "boom"}}
		c, _ := fixture(t, admin, &fakeStore{})
		var failed *identitycenter.FailedError
		if _, err := c.Unassign(context.Background(), asg); !errors.As(err, &failed) {
			t.Fatalf("err %v, want the FailedError", err)
		}
		if d := admin.count("DeleteAccountAssignment"); d != 1 {
			t.Errorf("%d deletes after a failure, want 1", d)
		}
	})
}

// regrowing is SSO Admin where a copy comes back after each delete (as
// another writer creating it again).
type regrowing struct{ *fakeAdmin }

func (r regrowing) DeleteAccountAssignment(ctx context.Context, in *ssoadmin.DeleteAccountAssignmentInput, opts ...func(*ssoadmin.Options)) (*ssoadmin.DeleteAccountAssignmentOutput, error) {
	out, err := r.fakeAdmin.DeleteAccountAssignment(ctx, in, opts...)
	r.add(*in.PrincipalId, 1)
	return out, err
}

// notFoundThatDeletes is a ResourceNotFoundException for an assignment
// someone else deleted between the read and the delete.
type notFoundThatDeletes struct{ f *fakeAdmin }

func (n notFoundThatDeletes) Error() string { return "ResourceNotFoundException" }
func (n notFoundThatDeletes) As(target any) bool {
	if p, ok := target.(**types.ResourceNotFoundException); ok {
		n.f.set(userID, 0)
		*p = &types.ResourceNotFoundException{}
		return true
	}
	return false
}

func TestDiscover(t *testing.T) {
	admin := newFakeAdmin()
	other := types.InstanceMetadata{InstanceArn: aws.String("arn:aws:sso:::instance/ssoins-0000000000000000"), IdentityStoreId: aws.String("d-0000000000")}
	admin.instances = [][]types.InstanceMetadata{{other}, admin.instances[0]} // ours on the second page
	c := identitycenter.NewFromAPIs(admin, &fakeStore{}, identitycenter.Options{})
	if _, err := c.IsAssigned(context.Background(), asg); err == nil || !strings.Contains(err.Error(), "Discover") {
		t.Errorf("before Discover: %v", err)
	}
	id, err := c.Discover(context.Background(), instanceARN)
	if err != nil || id != storeID {
		t.Fatalf("Discover = %q, %v", id, err)
	}
	missing := "arn:aws:sso:::instance/ssoins-1111111111111111"
	if _, err := c.Discover(context.Background(), missing); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("unknown instance: %v, want an error naming it", err)
	}
	if _, err := c.Discover(context.Background(), "ssoins-722328f0b7b1e6d7"); err == nil || !strings.Contains(err.Error(), "not an Identity Center instance ARN") {
		t.Errorf("malformed ARN: %v", err)
	}
}

func TestGroupMembershipWrites(t *testing.T) {
	member := istypes.GroupMembership{GroupId: aws.String(groupID), MemberId: &istypes.MemberIdMemberUserId{Value: userID}, MembershipId: aws.String("m-1")}
	t.Run("already a member by conflict", func(t *testing.T) {
		store := &fakeStore{createErr: &istypes.ConflictException{Reason: istypes.ConflictExceptionReasonUniquenessConstraintViolation}}
		c, _ := fixture(t, newFakeAdmin(), store)
		if id, err := c.AddToGroup(context.Background(), groupID, userID); err != nil || id != "" {
			t.Fatalf("AddToGroup = %q, %v", id, err)
		}
	})
	t.Run("concurrent modification is retryable", func(t *testing.T) {
		store := &fakeStore{createErr: &istypes.ConflictException{Reason: istypes.ConflictExceptionReasonConcurrentModification}}
		c, _ := fixture(t, newFakeAdmin(), store)
		if _, err := c.AddToGroup(context.Background(), groupID, userID); !awsx.Retryable(err) {
			t.Fatalf("err %v: want retryable", err)
		}
	})
	t.Run("throttled is retryable", func(t *testing.T) {
		store := &fakeStore{createErr: &istypes.ThrottlingException{Message: aws.String("slow down")}}
		c, _ := fixture(t, newFakeAdmin(), store)
		if _, err := c.AddToGroup(context.Background(), groupID, userID); !awsx.Retryable(err) {
			t.Fatalf("err %v: want retryable", err)
		}
	})
	t.Run("a member is not added again", func(t *testing.T) {
		store := &fakeStore{memberships: []istypes.GroupMembership{member}}
		c, _ := fixture(t, newFakeAdmin(), store)
		if id, err := c.AddToGroup(context.Background(), groupID, userID); err != nil || id != "" || store.count("CreateGroupMembership") != 0 {
			t.Fatalf("AddToGroup = %q, %v after %v", id, err, store.calls)
		}
	})
	t.Run("not found on delete is success", func(t *testing.T) {
		store := &fakeStore{memberships: []istypes.GroupMembership{member}, deleteErr: &istypes.ResourceNotFoundException{}}
		c, _ := fixture(t, newFakeAdmin(), store)
		if id, err := c.RemoveFromGroup(context.Background(), groupID, userID); err != nil || id != "" || store.count("DeleteGroupMembership") != 1 {
			t.Fatalf("RemoveFromGroup = %q, %v after %v", id, err, store.calls)
		}
	})
	t.Run("every copy deleted, the first's request id", func(t *testing.T) {
		copy2 := member
		copy2.MembershipId = aws.String("m-2")
		other := istypes.GroupMembership{GroupId: aws.String("other-group"), MemberId: member.MemberId, MembershipId: aws.String("m-3")}
		store := &fakeStore{memberships: []istypes.GroupMembership{member, copy2, other}}
		c, _ := fixture(t, newFakeAdmin(), store)
		if id, err := c.RemoveFromGroup(context.Background(), groupID, userID); err != nil || id != "req-m-1" {
			t.Fatalf("RemoveFromGroup = %q, %v; want the first delete's request id", id, err)
		}
		if n := store.count("DeleteGroupMembership"); n != 2 || len(store.memberships) != 1 || *store.memberships[0].MembershipId != "m-3" {
			t.Errorf("%d deletes, left %v; want 2, only the other group's", n, store.memberships)
		}
	})
	t.Run("not a member: nothing deleted", func(t *testing.T) {
		store := &fakeStore{}
		c, _ := fixture(t, newFakeAdmin(), store)
		if id, err := c.RemoveFromGroup(context.Background(), groupID, userID); err != nil || id != "" || store.count("DeleteGroupMembership") != 0 {
			t.Fatalf("RemoveFromGroup = %q, %v after %v", id, err, store.calls)
		}
	})
}

func user(id, name string, emails ...string) istypes.User {
	u := istypes.User{UserId: aws.String(id), UserName: aws.String(name)}
	for _, e := range emails {
		u.Emails = append(u.Emails, istypes.Email{Value: aws.String(e)})
	}
	return u
}

func TestUserByEmail(t *testing.T) {
	users := []istypes.User{user("u-none", "nomail"), user("u-alice", "alice", "Alice@Example.com"),
		user("u-d1", "dup1", "Dup@example.com"), user("u-d2", "dup2", "dup@EXAMPLE.com")}
	t.Run("exact match, then cached", func(t *testing.T) {
		store := &fakeStore{users: users, getUserID: func(e string) (string, error) {
			if e == "Alice@Example.com" {
				return "u-alice", nil
			}
			return "", &istypes.ResourceNotFoundException{}
		}}
		c, _ := fixture(t, newFakeAdmin(), store)
		for range 2 {
			u, err := c.UserByEmail(context.Background(), "Alice@Example.com")
			if err != nil || u != (identitycenter.User{ID: "u-alice", UserName: "alice"}) {
				t.Fatalf("UserByEmail = %+v, %v", u, err)
			}
		}
		if store.count("GetUserId") != 1 || store.count("ListUsers") != 0 {
			t.Errorf("calls %v: want one GetUserId, no scan", store.calls)
		}
	})
	t.Run("server error falls back to the scan", func(t *testing.T) {
		store := &fakeStore{users: users, getUserID: func(string) (string, error) { return "", serverError() }}
		c, _ := fixture(t, newFakeAdmin(), store)
		u, err := c.UserByEmail(context.Background(), "alice@example.com")
		if err != nil || u.ID != "u-alice" {
			t.Fatalf("UserByEmail = %+v, %v", u, err)
		}
		if store.count("ListUsers") != len(users) {
			t.Errorf("ListUsers called %d times, want one page per user (%d)", store.count("ListUsers"), len(users))
		}
		var idErr *grants.IdentityError
		if _, err := c.UserByEmail(context.Background(), "dup@example.com"); !errors.As(err, &idErr) || idErr.Code != "ambiguous_user" {
			t.Errorf("two users share the email without case: %v, want ambiguous_user", err)
		}
		// A miss in a fresh index does not list the store again.
		before := store.count("ListUsers")
		if _, err := c.UserByEmail(context.Background(), "nobody@example.com"); !errors.As(err, &idErr) || idErr.Code != "unknown_user" {
			t.Errorf("unknown email: %v, want unknown_user", err)
		}
		if store.count("ListUsers") != before {
			t.Error("a miss right after a scan listed the store again")
		}
	})
	t.Run("throttling is not a fallback", func(t *testing.T) {
		store := &fakeStore{users: users, getUserID: func(string) (string, error) { return "", &istypes.ThrottlingException{} }}
		c, _ := fixture(t, newFakeAdmin(), store)
		if _, err := c.UserByEmail(context.Background(), "alice@example.com"); !awsx.Retryable(err) || store.count("ListUsers") != 0 {
			t.Fatalf("err %v after %v: want retryable, no scan", err, store.calls)
		}
	})
	t.Run("not an email", func(t *testing.T) {
		c, _ := fixture(t, newFakeAdmin(), &fakeStore{})
		var idErr *grants.IdentityError
		if _, err := c.UserByEmail(context.Background(), "alice"); !errors.As(err, &idErr) || idErr.Code != "unknown_user" {
			t.Fatalf("err %v", err)
		}
	})
}

func TestProvision(t *testing.T) {
	fixtureP := func(t *testing.T, p *provisioner) (*identitycenter.Client, *sleeper) {
		clock := testclock.New(t0)
		s := &sleeper{clock: clock}
		c := identitycenter.NewFromAPIs(p, &fakeStore{}, identitycenter.Options{Now: clock.Now, Sleep: s.Sleep})
		if _, err := c.Discover(context.Background(), instanceARN); err != nil {
			t.Fatal(err)
		}
		return c, s
	}
	t.Run("polls until succeeded", func(t *testing.T) {
		p := &provisioner{fakeAdmin: newFakeAdmin(), replies: []reply{{status: types.StatusValuesInProgress}, {status: types.StatusValuesInProgress}, {status: types.StatusValuesSucceeded}}}
		c, s := fixtureP(t, p)
		if id, err := c.Provision(context.Background(), psARN, account); err != nil || id != "prov-1" {
			t.Fatalf("Provision = %q, %v", id, err)
		}
		if want := []time.Duration{200 * time.Millisecond, 400 * time.Millisecond}; !slices.Equal(s.waits, want) {
			t.Errorf("waits %v, want %v (the default backoff)", s.waits, want)
		}
	})
	t.Run("failed carries the reason", func(t *testing.T) {
		p := &provisioner{fakeAdmin: newFakeAdmin(), replies: []reply{{status: types.StatusValuesInProgress}, {status: types.StatusValuesFailed, reason: "policy too large"}}}
		c, _ := fixtureP(t, p)
		var failed *identitycenter.FailedError
		if _, err := c.Provision(context.Background(), psARN, account); !errors.As(err, &failed) || failed.Reason != "policy too large" || failed.RequestID != "prov-1" {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("done at once is not described", func(t *testing.T) {
		p := &provisioner{fakeAdmin: newFakeAdmin()} // answers SUCCEEDED, as moto does
		c, _ := fixtureP(t, p)
		if _, err := c.Provision(context.Background(), psARN, account); err != nil {
			t.Fatal(err)
		}
		if slices.Contains(p.calls, "DescribePermissionSetProvisioningStatus") {
			t.Error("described a request already done (moto has no such call)")
		}
	})
	t.Run("conflict and throttling are retryable", func(t *testing.T) {
		for _, e := range []error{&types.ConflictException{}, &types.ThrottlingException{}} {
			c, _ := fixtureP(t, &provisioner{fakeAdmin: newFakeAdmin(), err: e})
			if _, err := c.Provision(context.Background(), psARN, account); !awsx.Retryable(err) {
				t.Errorf("%T: %v, want retryable", e, err)
			}
		}
	})
}
