package grants

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/iamjit/iamjit/events"
)

// Account is one AWS account iamjit serves: its id and what acts in it,
// each through the account's own role chain. Every cache behind it (groups,
// identities, roles) is the account's own: the same email may be another
// IAM user there, and the same group name another group.
type Account struct {
	// ID is the 12-digit account id. It is "" only for a home account whose
	// id could not be known (no role chain and no caller identity): then it
	// is the only account.
	ID   string
	Home bool // the account of IAMJIT_CONNECTOR_ROLE_ARN's chain

	// IAM groups of this account.
	IAM      GroupMembership
	Groups   Groups
	Members  MemberLister // reconcile's listing of the groups iamjit manages
	Identity *Identity
	Sessions Sessions // nil: role sessions are left to expire

	// SSO is Identity Center, set on the one account that holds the
	// instance (IAMJIT_SSO_ACCOUNT); nil elsewhere and when it is off.
	SSO *IdentityCenter
	// Backstop keeps the AWS-run schedules of the memberships this
	// account's chain changes (Of); nil: off.
	Backstop Backstop
}

// IdentityCenter is what acts in Identity Center, through the chain of the
// account that holds the instance: assignments of permission sets and
// Identity Store group memberships (PermissionSet and SSOGroup keys).
type IdentityCenter struct {
	Members Members
	Users   SSOUsers
	// Sessions ends a permission set's sessions when an assignment (or a
	// group that carries assignments) ends; nil leaves them to expire.
	Sessions Sessions
	// Lister lists the memberships reconcile compares with the grants.
	Lister SSOLister
}

// Members changes and reads memberships by key. Like GroupMembership, both
// changes are idempotent (already there, or already gone, is success) and
// return the AWS request id for the grant's history ("" for no change).
type Members interface {
	Add(ctx context.Context, k Key) (string, error)
	Remove(ctx context.Context, k Key) (string, error)
	IsMember(ctx context.Context, k Key) (bool, error)
}

// SSOUsers maps a requester's email to their Identity Store user id. An
// *IdentityError says there is none (unknown_user) or more than one
// (ambiguous_user).
type SSOUsers interface {
	UserID(ctx context.Context, email string) (string, error)
}

// SSOLister lists the memberships of allowed Identity Center targets:
// every USER assignment of the permission sets in the accounts, and every
// member of the groups. Keys carry account as SSOGroup keys' account.
type SSOLister interface {
	Assigned(ctx context.Context, permissionSets, accounts []string) ([]Key, error)
	GroupMembersOf(ctx context.Context, groups []string, account string) ([]Key, error)
}

// MembersOf is what changes memberships of kind k in this account.
func (a *Account) MembersOf(k Kind) Members {
	if k == IAMGroup {
		return iamMembers{a.IAM}
	}
	return a.SSO.Members
}

// sessions is what ends the sessions of a membership of kind k (nil: none).
func (a *Account) sessions(k Kind) Sessions {
	if k == IAMGroup {
		return a.Sessions
	}
	return a.SSO.Sessions
}

// iamMembers is GroupMembership by key.
type iamMembers struct{ GroupMembership }

func (m iamMembers) Add(ctx context.Context, k Key) (string, error) {
	return m.AddUser(ctx, k.User, k.Group)
}
func (m iamMembers) Remove(ctx context.Context, k Key) (string, error) {
	return m.RemoveUser(ctx, k.User, k.Group)
}
func (m iamMembers) IsMember(ctx context.Context, k Key) (bool, error) {
	return m.GroupMembership.IsMember(ctx, k.User, k.Group)
}

// MemberLister lists the members of every group under a path, by group
// name: what reconcile compares with the active grants.
type MemberLister interface {
	ManagedGroups(ctx context.Context, path string) (map[string][]string, error)
}

// Name names the account in messages: "home account" or "account <id>".
func (a *Account) Name() string {
	if a.Home {
		return "home account"
	}
	return "account " + a.ID
}

// In names a member account at the end of a message ("group x in account
// <id>"); the home account is implied ("").
func (a *Account) In() string {
	if a.Home {
		return ""
	}
	return " in account " + a.ID
}

// Accounts is the registry of the accounts iamjit serves: the home account
// and those of IAMJIT_ACCOUNTS. Memberships, grants and results name an
// account by its id; only the store writes the home account as an absent
// attribute (the layout of tables from before there were accounts).
type Accounts struct {
	home    *Account
	members map[string]*Account
	sso     *Account // the one with SSO set, if any
}

// NewAccounts builds the registry. A member without an id, or one that
// repeats the home account or another member, is a configuration error.
func NewAccounts(home *Account, members ...*Account) (*Accounts, error) {
	home.Home = true
	r := &Accounts{home: home, members: map[string]*Account{}}
	for _, m := range members {
		switch {
		case m.ID == "":
			return nil, fmt.Errorf("IAMJIT_ACCOUNTS: an entry has no account id")
		case m.ID == home.ID:
			return nil, fmt.Errorf("IAMJIT_ACCOUNTS: entry %q is the home account", m.ID)
		case r.members[m.ID] != nil:
			return nil, fmt.Errorf("IAMJIT_ACCOUNTS: account %q twice", m.ID)
		}
		m.Home = false
		r.members[m.ID] = m
	}
	for _, a := range r.All() {
		if a.SSO != nil {
			if r.sso != nil {
				return nil, fmt.Errorf("IAMJIT_SSO_ACCOUNT: Identity Center is set on %s and on %s", r.sso.Name(), a.Name())
			}
			r.sso = a
		}
	}
	return r, nil
}

// SSO is the account that holds the Identity Center instance, nil when
// Identity Center targets are off.
func (r *Accounts) SSO() *Account { return r.sso }

// Of is the account whose chain changes membership k: an IAM group's own
// account, or the Identity Center account for the other kinds.
func (r *Accounts) Of(k Key) (*Account, error) {
	if k.Kind == IAMGroup {
		return r.Get(k.Account)
	}
	if r.sso == nil {
		return nil, ErrSSONotConfigured
	}
	return r.sso, nil
}

// ErrSSONotConfigured is returned for an Identity Center membership while
// IAMJIT_SSO_INSTANCE_ARN is unset: its grants cannot be changed until it
// is set again.
var ErrSSONotConfigured = errors.New("Identity Center is not configured (IAMJIT_SSO_INSTANCE_ARN): its memberships cannot be changed")

// Home is the home account.
func (r *Accounts) Home() *Account { return r.home }

// All lists every account, the home account first, then the members by id.
func (r *Accounts) All() []*Account {
	out := []*Account{r.home}
	for _, id := range slices.Sorted(maps.Keys(r.members)) {
		out = append(out, r.members[id])
	}
	return out
}

// Get is the account a membership or grant names by id. An id that is no
// (longer a) configured account is an *ErrAccountNotConfigured: its
// memberships cannot be changed until it is configured again.
func (r *Accounts) Get(id string) (*Account, error) {
	if id == r.home.ID {
		return r.home, nil
	}
	if m, ok := r.members[id]; ok {
		return m, nil
	}
	return nil, &ErrAccountNotConfigured{Account: id}
}

// Route says which account a request's target lives in, from the account
// its ARN names ("" for a bare name): the home account, a member, or a
// refusal for an account iamjit does not serve. It is the one place a
// target is routed.
func (r *Accounts) Route(arnAccount string) (*Account, *Rejection) {
	if arnAccount == "" || arnAccount == r.home.ID {
		return r.home, nil
	}
	if m, ok := r.members[arnAccount]; ok {
		return m, nil
	}
	if r.home.ID == "" {
		// The home account is not known (no role chain and no caller
		// identity): the group lookup tells whether it is this one.
		return r.home, nil
	}
	rej := reject(events.CodeForeignAccount, "group ARN names account "+arnAccount+", which is neither this one nor in IAMJIT_ACCOUNTS")
	rej.Account = arnAccount
	return nil, rej
}

// ErrAccountNotConfigured is returned for a membership of an account that
// is not (any longer) in IAMJIT_ACCOUNTS: its grants cannot be changed until
// the account is configured again, and the error says so on every try.
type ErrAccountNotConfigured struct{ Account string }

func (e *ErrAccountNotConfigured) Error() string {
	return "account " + e.Account + " is not configured (IAMJIT_ACCOUNTS): its memberships cannot be changed"
}

// byAccount runs do for every item, the items of one account in order and
// the accounts side by side: an account that is slow or failing (throttled,
// unreachable, denied) delays only its own items. It returns each item's
// error, in the items' order.
func byAccount[T any](items []T, account func(T) string, do func(T) error) []error {
	idx := map[string][]int{}
	for i, it := range items {
		a := account(it)
		idx[a] = append(idx[a], i)
	}
	errs := make([]error, len(items))
	var wg sync.WaitGroup
	for _, list := range idx {
		wg.Go(func() {
			for _, i := range list {
				errs[i] = do(items[i])
			}
		})
	}
	wg.Wait()
	return errs
}
