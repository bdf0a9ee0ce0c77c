// Package awsx builds AWS configuration once for the whole process: the base
// credentials from the SDK's default chain, the chained role for IAM, and the
// middleware that counts every call by service and operation.
package awsx

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go/middleware"
)

// Load returns the base configuration (the ECS task role in production) with
// counter installed on every client built from it. AWS_ENDPOINT_URL, read by
// the SDK itself, points every client at an emulator.
func Load(ctx context.Context, counter *Counter) (aws.Config, error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		return aws.Config{}, fmt.Errorf("AWS_REGION: required")
	}
	if counter != nil {
		cfg.APIOptions = append(cfg.APIOptions, counter.Register)
	}
	return cfg, nil
}

// Chain returns a configuration whose credentials come from assuming the
// connector role with externalID and then the IAM-modifier role. Both are
// cached and refreshed before they expire, never assumed per message.
func Chain(base aws.Config, connectorARN, externalID, iamRoleARN string) aws.Config {
	connector := aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(sts.NewFromConfig(base), connectorARN,
		func(o *stscreds.AssumeRoleOptions) {
			o.ExternalID = aws.String(externalID)
			o.RoleSessionName = "iamjit-connector"
			o.Duration = time.Hour
		}))
	viaConnector := base.Copy()
	viaConnector.Credentials = connector
	modifier := aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(sts.NewFromConfig(viaConnector), iamRoleARN,
		func(o *stscreds.AssumeRoleOptions) {
			o.RoleSessionName = "iamjit"
			o.Duration = time.Hour
		}), func(o *aws.CredentialsCacheOptions) { o.ExpiryWindow = 5 * time.Minute })
	out := base.Copy()
	out.Credentials = modifier
	return out
}

// VerifyChain asks STS who the chained credentials are, so that a wrong role
// or external id stops start-up with a clear error instead of failing every
// message. It returns the caller ARN and account.
func VerifyChain(ctx context.Context, chained aws.Config, iamRoleARN string) (string, string, error) {
	out, err := sts.NewFromConfig(chained).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return "", "", fmt.Errorf("assume the role chain: %w", err)
	}
	arn := aws.ToString(out.Arn)
	name := iamRoleARN[strings.LastIndex(iamRoleARN, "/")+1:]
	if !strings.Contains(arn, ":assumed-role/"+name+"/") {
		return "", "", fmt.Errorf("role chain ends as %s, not as the IAM-modifier role %s", arn, iamRoleARN)
	}
	return arn, aws.ToString(out.Account), nil
}

// RequestID is the AWS request id of a call's result, for the history that
// joins iamjit's records to CloudTrail; "" when the response had none.
func RequestID(md middleware.Metadata) string {
	id, _ := awsmiddleware.GetRequestIDMetadata(md)
	return id
}
