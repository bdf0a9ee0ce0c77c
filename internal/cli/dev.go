package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/iamjit/iamjit/internal/devstack"
)

// runDev creates the whole stack in a local emulator and prints the export
// lines `iamjit run` needs: eval "$(iamjit dev)". That includes Identity
// Center (IAMJIT_SSO_*) and the backstop (IAMJIT_BACKSTOP_ROLE_ARN). Each
// --member-account ID also gets a member account's stack and an
// IAMJIT_ACCOUNTS entry.
func runDev(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	var o devstack.Options
	fs.StringVar(&o.Prefix, "prefix", "iamjit", "name prefix of every resource")
	vis := fs.Int("visibility", 30, "queue visibility timeout, seconds")
	fs.IntVar(&o.MaxReceiveCount, "max-receive", 5, "receives before a message moves to the DLQ")
	fs.StringVar(&o.User, "user", "alice@example.com", "IAM user to create (named by the email)")
	fs.StringVar(&o.Group, "group", "", "IAM group to create under /sym/ (default <prefix>-readonly)")
	fs.Func("member-account", "also create a member account `ID`'s stack (12 digits); repeatable", func(id string) error {
		if err := devstack.CheckAccountID(id); err != nil {
			return err
		}
		o.MemberAccounts = append(o.MemberAccounts, id)
		return nil
	})
	if err := fs.Parse(args); err != nil {
		return usageErr("dev: %v", err)
	}
	o.VisibilityTimeout = int32(*vis)
	endpoint := getenv("AWS_ENDPOINT_URL")
	if err := devstack.CheckEndpoint(endpoint); err != nil {
		return usageErr("%v", err)
	}
	region := getenv("AWS_REGION")
	if region == "" {
		region = "us-east-1"
	}
	opts := []func(*awsconfig.LoadOptions) error{awsconfig.WithRegion(region), awsconfig.WithBaseEndpoint(endpoint)}
	haveCreds := getenv("AWS_ACCESS_KEY_ID") != "" || getenv("AWS_PROFILE") != ""
	if !haveCreds {
		opts = append(opts, awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("test", "test", "")))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return fmt.Errorf("dev: load AWS configuration: %w", err)
	}
	cfg.RetryMaxAttempts = 3
	st, err := devstack.Create(ctx, cfg, o)
	if errors.Is(err, devstack.ErrMemberAccount) {
		// Repeated, or the home account: found before anything was made.
		return usageErr("dev: --member-account: %v", err)
	}
	if err != nil {
		return fmt.Errorf("dev: %w", err)
	}
	fmt.Fprint(stdout, st.Exports(endpoint, region, haveCreds))
	return nil
}
