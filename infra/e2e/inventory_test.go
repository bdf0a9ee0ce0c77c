//go:build infrae2e

package e2e

import (
	"context"
	"encoding/xml"
	"fmt"
	"net/url"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/pipes"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// inventory is every resource of the kinds infra/environments/prod creates
// that exists in an account, by kind: what `terraform destroy` must leave
// as it found it. KMS keys pending deletion, INACTIVE task definition
// revisions and secrets scheduled for deletion are what AWS itself keeps
// after a delete; they are not listed.
type inventory map[string][]string

func (inv inventory) add(kind string, names ...string) { inv[kind] = append(inv[kind], names...) }

// minus is what inv has that before has not, by kind.
func (inv inventory) minus(before inventory) inventory {
	left := inventory{}
	for kind, names := range inv {
		for _, n := range names {
			if !contains(before[kind], n) {
				left.add(kind, n)
			}
		}
	}
	return left
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func (inv inventory) String() string {
	var b strings.Builder
	for _, k := range sortedKeys(inv) {
		fmt.Fprintf(&b, "%s %v; ", k, inv[k])
	}
	return strings.TrimSuffix(b.String(), "; ")
}

// iamInventory lists the account's roles, groups, customer-managed policies.
func iamInventory(ctx context.Context, cfg aws.Config, inv inventory, prefix string) error {
	c := iam.NewFromConfig(cfg)
	roles, err := c.ListRoles(ctx, &iam.ListRolesInput{})
	if err != nil {
		return fmt.Errorf("ListRoles: %w", err)
	}
	for _, r := range roles.Roles {
		inv.add(prefix+"iam role", aws.ToString(r.Arn))
	}
	groups, err := c.ListGroups(ctx, &iam.ListGroupsInput{})
	if err != nil {
		return fmt.Errorf("ListGroups: %w", err)
	}
	for _, g := range groups.Groups {
		inv.add(prefix+"iam group", aws.ToString(g.Arn))
	}
	pols, err := c.ListPolicies(ctx, &iam.ListPoliciesInput{Scope: iamtypes.PolicyScopeTypeLocal})
	if err != nil {
		return fmt.Errorf("ListPolicies: %w", err)
	}
	for _, p := range pols.Policies {
		inv.add(prefix+"iam policy", aws.ToString(p.Arn))
	}
	return nil
}

// homeInventory lists every kind environments/prod creates in the home account.
func homeInventory(ctx context.Context, cfg aws.Config, endpoint string) (inventory, error) {
	inv := inventory{}
	if err := iamInventory(ctx, cfg, inv, ""); err != nil {
		return nil, err
	}
	steps := []func() error{
		func() error {
			out, err := sqs.NewFromConfig(cfg).ListQueues(ctx, &sqs.ListQueuesInput{})
			if err != nil {
				return err
			}
			inv.add("sqs queue", out.QueueUrls...)
			return nil
		},
		func() error {
			c := eventbridge.NewFromConfig(cfg)
			buses, err := c.ListEventBuses(ctx, &eventbridge.ListEventBusesInput{})
			if err != nil {
				return err
			}
			for _, b := range buses.EventBuses {
				inv.add("event bus", aws.ToString(b.Name))
				rules, err := c.ListRules(ctx, &eventbridge.ListRulesInput{EventBusName: b.Name})
				if err != nil {
					return err
				}
				for _, r := range rules.Rules {
					inv.add("event rule", aws.ToString(r.Arn))
				}
			}
			arch, err := c.ListArchives(ctx, &eventbridge.ListArchivesInput{})
			if err != nil {
				return err
			}
			for _, a := range arch.Archives {
				inv.add("event archive", aws.ToString(a.ArchiveName))
			}
			return nil
		},
		func() error {
			out, err := dynamodb.NewFromConfig(cfg).ListTables(ctx, &dynamodb.ListTablesInput{})
			if err != nil {
				return err
			}
			inv.add("dynamodb table", out.TableNames...)
			return nil
		},
		func() error {
			c := ecs.NewFromConfig(cfg)
			cl, err := c.ListClusters(ctx, &ecs.ListClustersInput{})
			if err != nil {
				return err
			}
			if len(cl.ClusterArns) > 0 {
				d, err := c.DescribeClusters(ctx, &ecs.DescribeClustersInput{Clusters: cl.ClusterArns})
				if err != nil {
					return err
				}
				for _, k := range d.Clusters {
					if aws.ToString(k.Status) != "INACTIVE" { // a deleted cluster stays INACTIVE for a while, as on AWS
						inv.add("ecs cluster", aws.ToString(k.ClusterArn))
					}
				}
			}
			td, err := c.ListTaskDefinitions(ctx, &ecs.ListTaskDefinitionsInput{Status: ecstypes.TaskDefinitionStatusActive})
			if err != nil {
				return err
			}
			inv.add("ecs task definition (ACTIVE)", td.TaskDefinitionArns...)
			return nil
		},
		func() error {
			out, err := kinesis.NewFromConfig(cfg).ListStreams(ctx, &kinesis.ListStreamsInput{})
			if err != nil {
				return err
			}
			inv.add("kinesis stream", out.StreamNames...)
			return nil
		},
		func() error {
			out, err := pipes.NewFromConfig(cfg).ListPipes(ctx, &pipes.ListPipesInput{})
			if err != nil {
				return err
			}
			for _, p := range out.Pipes {
				inv.add("pipe", aws.ToString(p.Arn))
			}
			return err
		},
		func() error {
			out, err := cloudwatchlogs.NewFromConfig(cfg).DescribeLogGroups(ctx, &cloudwatchlogs.DescribeLogGroupsInput{})
			if err != nil {
				return err
			}
			for _, g := range out.LogGroups {
				inv.add("log group", aws.ToString(g.LogGroupName))
			}
			return err
		},
		func() error {
			c := kms.NewFromConfig(cfg)
			keys, err := c.ListKeys(ctx, &kms.ListKeysInput{})
			if err != nil {
				return err
			}
			al, err := c.ListAliases(ctx, &kms.ListAliasesInput{})
			if err != nil {
				return err
			}
			awsManaged := map[string]bool{} // keys AWS makes on first use (alias/aws/kinesis, ...) and keeps
			for _, a := range al.Aliases {
				if strings.HasPrefix(aws.ToString(a.AliasName), "alias/aws/") {
					awsManaged[aws.ToString(a.TargetKeyId)] = true
				}
			}
			for _, k := range keys.Keys {
				if awsManaged[aws.ToString(k.KeyId)] {
					continue
				}
				d, err := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: k.KeyId})
				if err != nil {
					return err
				}
				if d.KeyMetadata.KeyState != kmstypes.KeyStatePendingDeletion && d.KeyMetadata.KeyManager == kmstypes.KeyManagerTypeCustomer {
					inv.add("kms key", aws.ToString(k.KeyArn))
				}
			}
			for _, a := range al.Aliases {
				if !strings.HasPrefix(aws.ToString(a.AliasName), "alias/aws/") {
					inv.add("kms alias", aws.ToString(a.AliasName))
				}
			}
			return err
		},
		func() error {
			out, err := sns.NewFromConfig(cfg).ListTopics(ctx, &sns.ListTopicsInput{})
			if err != nil {
				return err
			}
			for _, tp := range out.Topics {
				inv.add("sns topic", aws.ToString(tp.TopicArn))
			}
			return err
		},
		func() error {
			out, err := ecr.NewFromConfig(cfg).DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{})
			if err != nil {
				return err
			}
			for _, r := range out.Repositories {
				inv.add("ecr repository", aws.ToString(r.RepositoryArn))
			}
			return err
		},
		func() error {
			out, err := secretsmanager.NewFromConfig(cfg).ListSecrets(ctx, &secretsmanager.ListSecretsInput{})
			if err != nil {
				return err
			}
			for _, s := range out.SecretList {
				if s.DeletedDate == nil {
					inv.add("secret", aws.ToString(s.ARN))
				}
			}
			return err
		},
		func() error {
			// CloudWatch's SDK speaks RPCv2 CBOR, which moto 5.2.1 does not
			// serve: its query API instead.
			b, err := queryAPI(ctx, cfg, endpoint, "monitoring", url.Values{"Action": {"DescribeAlarms"}, "Version": {"2010-08-01"}})
			if err != nil {
				return err
			}
			var res struct {
				Names []string `xml:"DescribeAlarmsResult>MetricAlarms>member>AlarmName"`
			}
			if err := xml.Unmarshal(b, &res); err != nil {
				return fmt.Errorf("DescribeAlarms: %w", err)
			}
			inv.add("alarm", res.Names...)
			return nil
		},
		func() error {
			groups, err := securityGroups(ctx, cfg, endpoint)
			inv.add("security group", groups...)
			return err
		},
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return nil, fmt.Errorf("inventory: %w", err)
		}
	}
	return inv, nil
}

// securityGroups lists the security groups' ids.
func securityGroups(ctx context.Context, cfg aws.Config, endpoint string) ([]string, error) {
	b, err := queryAPI(ctx, cfg, endpoint, "ec2", url.Values{"Action": {"DescribeSecurityGroups"}, "Version": {"2016-11-15"}})
	if err != nil {
		return nil, err
	}
	var res struct {
		IDs []string `xml:"securityGroupInfo>item>groupId"`
	}
	if err := xml.Unmarshal(b, &res); err != nil {
		return nil, fmt.Errorf("DescribeSecurityGroups: %w", err)
	}
	return res.IDs, nil
}
