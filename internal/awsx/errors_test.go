package awsx

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
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
