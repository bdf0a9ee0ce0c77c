package identitycenter

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/identitystore"
	"github.com/aws/aws-sdk-go-v2/service/identitystore/document"
	"github.com/aws/aws-sdk-go-v2/service/identitystore/types"

	"github.com/iamjit/iamjit/grants"
)

// User is an Identity Store user.
type User struct {
	ID, UserName string
}

// emailIndex is every user of the store by lower-case email, for the
// lookups GetUserId cannot answer.
type emailIndex struct {
	mu      sync.Mutex
	byEmail map[string][]User
	at      time.Time
	built   bool
	// refresh lets one caller at a time list the store.
	refresh sync.Mutex
	warned  sync.Once
}

// UserByEmail returns the Identity Store user whose email is email, a
// *grants.IdentityError with code unknown_user when there is none or
// ambiguous_user when there are several, or another error when the store
// could not be asked. A user found is cached for the TTL.
//
// GetUserId on emails.value answers first; AWS keeps an email unique in a
// store, so an exact match is the one user. It is exact, though (moto's is
// case-sensitive), and moto 5.2.1 answers it with HTTP 500 whenever it meets
// a user with no email before the match (quirk). Both a not-found and a
// server error other than throttling therefore fall back to an index of
// every user's emails compared without case (ListUsers), the way grants'
// tag strategy indexes IAM users: two users matching without case are
// ambiguous_user, never a guess. The index is rebuilt when older than the
// TTL, and a miss rebuilds it at most every TTL/10, so unknown emails cannot
// make iamjit list the store on every request.
func (c *Client) UserByEmail(ctx context.Context, email string) (User, error) {
	email = strings.TrimSpace(email)
	if email == "" || strings.Count(email, "@") != 1 {
		return User{}, &grants.IdentityError{Code: "unknown_user", Msg: fmt.Sprintf("%q is not an email address", email)}
	}
	if u, ok := c.users.Get(email); ok {
		return u, nil
	}
	in, err := c.instance()
	if err != nil {
		return User{}, err
	}
	out, err := c.store.GetUserId(ctx, &identitystore.GetUserIdInput{IdentityStoreId: &in.storeID,
		AlternateIdentifier: &types.AlternateIdentifierMemberUniqueAttribute{Value: types.UniqueAttribute{
			AttributePath: aws.String("emails.value"), AttributeValue: document.NewLazyDocument(email)}}})
	var nf *types.ResourceNotFoundException
	switch {
	case err == nil:
		u, err := c.describeUser(ctx, in, aws.ToString(out.UserId), email)
		if err != nil {
			return User{}, err
		}
		c.users.Put(email, u)
		return u, nil
	case errors.As(err, &nf):
	case serverFault(err):
		c.emails.warned.Do(func() {
			c.log.WarnContext(ctx, "identitystore:GetUserId failed with a server error: users are found by listing the store (moto 5.2.1 does this when a user has no email)", "err", err)
		})
	default:
		return User{}, fmt.Errorf("find the user with email %s: %w", email, err)
	}
	users, err := c.byEmail(ctx, in, email)
	if err != nil {
		return User{}, err
	}
	switch len(users) {
	case 0:
		return User{}, &grants.IdentityError{Code: "unknown_user", Msg: "no Identity Center user has the email " + email}
	case 1:
		c.users.Put(email, users[0])
		return users[0], nil
	default:
		return User{}, &grants.IdentityError{Code: "ambiguous_user", Msg: fmt.Sprintf("%d Identity Center users have the email %s", len(users), email)}
	}
}

func (c *Client) describeUser(ctx context.Context, in *instance, id, email string) (User, error) {
	out, err := c.store.DescribeUser(ctx, &identitystore.DescribeUserInput{IdentityStoreId: &in.storeID, UserId: &id})
	var nf *types.ResourceNotFoundException
	if errors.As(err, &nf) { // deleted since GetUserId
		return User{}, &grants.IdentityError{Code: "unknown_user", Msg: "no Identity Center user has the email " + email}
	}
	if err != nil {
		return User{}, fmt.Errorf("describe user %s (email %s): %w", id, email, err)
	}
	return User{ID: aws.ToString(out.UserId), UserName: aws.ToString(out.UserName)}, nil
}

// byEmail looks email up in the index, rebuilding it when stale.
func (c *Client) byEmail(ctx context.Context, in *instance, email string) ([]User, error) {
	key := strings.ToLower(email)
	ix := &c.emails
	ix.mu.Lock()
	age, built, users := c.now().Sub(ix.at), ix.built, ix.byEmail[key]
	ix.mu.Unlock()
	if built && age < c.ttl && (len(users) > 0 || age < c.ttl/10) {
		return users, nil
	}
	ix.refresh.Lock()
	defer ix.refresh.Unlock()
	ix.mu.Lock() // whoever held refresh before may have just rebuilt it
	if ix.built && c.now().Sub(ix.at) < c.ttl/10 {
		users := ix.byEmail[key]
		ix.mu.Unlock()
		return users, nil
	}
	ix.mu.Unlock()
	byEmail := map[string][]User{}
	p := identitystore.NewListUsersPaginator(c.store, &identitystore.ListUsersInput{IdentityStoreId: &in.storeID})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list Identity Center users (looking for %s): %w", email, err)
		}
		for _, u := range page.Users {
			user := User{ID: aws.ToString(u.UserId), UserName: aws.ToString(u.UserName)}
			for _, e := range u.Emails {
				k := strings.ToLower(strings.TrimSpace(aws.ToString(e.Value)))
				if k != "" && !slices.Contains(byEmail[k], user) { // one user may list an email twice
					byEmail[k] = append(byEmail[k], user)
				}
			}
		}
	}
	ix.mu.Lock()
	ix.byEmail, ix.at, ix.built = byEmail, c.now(), true
	ix.mu.Unlock()
	return byEmail[key], nil
}

// serverFault is a 5xx other than throttling: the kind of failure another
// call may not share.
func serverFault(err error) bool {
	var throttled *types.ThrottlingException
	if errors.As(err, &throttled) {
		return false
	}
	var resp *awshttp.ResponseError
	return errors.As(err, &resp) && resp.HTTPStatusCode() >= 500
}
