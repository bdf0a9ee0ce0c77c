package awsx

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

func httpErr(status int) error {
	return &awshttp.ResponseError{ResponseError: &smithyhttp.ResponseError{
		Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}}, Err: errors.New("x")}}
}

func TestRetryableByTypeAndCode(t *testing.T) {
	cases := []struct {
		err  error
		want bool
		code string
	}{
		{&smithy.GenericAPIError{Code: "Throttling", Message: "Rate exceeded"}, true, "Throttling"},
		{fmt.Errorf("add: %w", &smithy.GenericAPIError{Code: "ProvisionedThroughputExceededException"}), true, "ProvisionedThroughputExceededException"},
		{&smithy.GenericAPIError{Code: "Whatever", Fault: smithy.FaultServer}, true, "Whatever"},
		{&smithy.GenericAPIError{Code: "AccessDenied", Message: "throttling mentioned in text"}, false, "AccessDenied"},
		{&smithy.GenericAPIError{Code: "ValidationException"}, false, "ValidationException"},
		{httpErr(503), true, "InternalError"},
		{httpErr(429), true, "InternalError"},
		{httpErr(400), false, "InternalError"},
		{context.DeadlineExceeded, true, "Timeout"},
		{&Transient{Err: errors.New("eventual consistency")}, true, "InternalError"},
		{errors.New("Throttling: rate exceeded"), false, "InternalError"}, // text never decides
		// A quota is not a rate: IAM's and EventBridge's limit errors are
		// permanent, DynamoDB's (concurrent control-plane calls) is not.
		{&iamtypes.LimitExceededException{Message: aws.String("Cannot exceed quota for PolicySize: 10240")}, false, "LimitExceeded"},
		{&smithy.OperationError{ServiceID: "IAM", OperationName: "PutRolePolicy", Err: &iamtypes.LimitExceededException{}}, false, "LimitExceeded"},
		{&smithy.GenericAPIError{Code: "LimitExceeded"}, false, "LimitExceeded"},
		{&smithy.OperationError{ServiceID: "EventBridge", OperationName: "PutRule", Err: &ebtypes.LimitExceededException{}}, false, "LimitExceededException"},
		{&smithy.GenericAPIError{Code: "LimitExceededException"}, false, "LimitExceededException"},
		{&smithy.OperationError{ServiceID: "DynamoDB", OperationName: "UpdateTable", Err: &ddbtypes.LimitExceededException{}}, true, "LimitExceededException"},
	}
	for _, c := range cases {
		if got := Retryable(c.err); got != c.want {
			t.Errorf("Retryable(%v) = %v, want %v", c.err, got, c.want)
		}
		if got := Code(c.err); got != c.code {
			t.Errorf("Code(%v) = %q, want %q", c.err, got, c.code)
		}
	}
}

func TestDenied(t *testing.T) {
	for err, want := range map[error]bool{
		&smithy.GenericAPIError{Code: "AccessDenied"}:                                  true,
		fmt.Errorf("read: %w", &smithy.GenericAPIError{Code: "AccessDeniedException"}): true,
		httpErr(403): true, // moto's IAM access control: a 403 with no code the SDK can read
		httpErr(404): false,
		&smithy.GenericAPIError{Code: "NoSuchEntity"}:                         false,
		&smithy.GenericAPIError{Code: "Throttling", Message: "access denied"}: false, // text never decides
		errors.New("AccessDenied"):                                            false,
		nil:                                                                   false,
	} {
		if got := Denied(err); got != want {
			t.Errorf("Denied(%v) = %v, want %v", err, got, want)
		}
	}
}
