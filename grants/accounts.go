package grants

import (
	"cmp"
	"sync"

	"github.com/iamjit/iamjit/events"
)

// Account is what the service needs of one AWS account's IAM, reached
// through that account's own role chain. Every cache behind it (groups,
// identities, roles) is the account's own: the same email may be another
// IAM user there, and the same group name another group.
type Account struct {
	IAM      GroupMembership
	Groups   Groups
	Identity *Identity
	Sessions Sessions // nil: role sessions are left to expire
}

// ErrAccountNotConfigured is returned for a membership of an account that
// is not (any longer) in IAMJIT_ACCOUNTS: its grants cannot be changed until
// the account is configured again, and the error says so on every try.
type ErrAccountNotConfigured struct{ Account string }

func (e *ErrAccountNotConfigured) Error() string {
	return "account " + e.Account + " is not configured (IAMJIT_ACCOUNTS): its memberships cannot be changed"
}

// account returns the IAM of the account id ("" is the home account).
func (s *Service) account(id string) (Account, error) {
	if id == "" {
		return Account{IAM: s.IAM, Groups: s.Groups, Identity: s.Identity, Sessions: s.Sessions}, nil
	}
	a, ok := s.Members[id]
	if !ok {
		return Account{}, &ErrAccountNotConfigured{Account: id}
	}
	return a, nil
}

// route says in which account a request's group lives: "" (home) for a bare
// name or an ARN of the home account, the member account its ARN names, or
// a refusal for an account iamjit does not serve.
func (s *Service) route(arnAccount string) (string, *Rejection) {
	if arnAccount == "" || arnAccount == s.HomeAccount {
		return "", nil
	}
	if _, ok := s.Members[arnAccount]; ok {
		return arnAccount, nil
	}
	if s.HomeAccount == "" {
		// The home account is not known (no role chain and no caller
		// identity): the group lookup below tells whether it is this one.
		return "", nil
	}
	rej := reject(events.CodeForeignAccount, "group ARN names account "+arnAccount+", which is neither this one nor in IAMJIT_ACCOUNTS")
	rej.Account = arnAccount
	return "", rej
}

// AccountID is the account a grant's group lives in, as results name it.
func (s *Service) AccountID(account string) string { return cmp.Or(account, s.HomeAccount) }

func (s *Service) grantedResult(g Grant) events.Result {
	r := grantedResult(g)
	r.AccountID = s.AccountID(g.Account)
	return r
}

func (s *Service) revokedResult(g Grant) events.Result {
	r := revokedResult(g)
	r.AccountID = s.AccountID(g.Account)
	return r
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
