package grants

import (
	"context"
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

	IAM      GroupMembership
	Groups   Groups
	Members  MemberLister // reconcile's listing of the groups iamjit manages
	Identity *Identity
	Sessions Sessions // nil: role sessions are left to expire
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
	return r, nil
}

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
