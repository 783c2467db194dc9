package awsapi_test

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/smithy-go"

	"github.com/kmsgo/kmsgo/server/kmstest"
)

// newClient returns the real AWS SDK KMS client pointed at srv, signing with
// the given kmsd access key. Retries are off so that error tests see the
// first answer.
func newClient(srv *kmstest.Server, accessKeyID, secret string) *kms.Client {
	return kms.New(kms.Options{
		Region:       srv.Region,
		BaseEndpoint: aws.String(srv.URL),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: accessKeyID, SecretAccessKey: secret, Source: "kmstest"}, nil
		}),
		HTTPClient:       srv.HTTP.Client(),
		RetryMaxAttempts: 1,
	})
}

func adminClient(srv *kmstest.Server) *kms.Client {
	return newClient(srv, srv.AccessKeyID, srv.SecretAccessKey)
}

// wantAPIError fails unless err is an AWS API error with code.
func wantAPIError(t *testing.T, err error, code string) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("error %v (%T) is not an API error, want %s", err, err, code)
	}
	if ae.ErrorCode() != code {
		t.Fatalf("error code %s (%v), want %s", ae.ErrorCode(), err, code)
	}
}

// wantErrorAs fails unless errors.As(err, target) holds (target is a
// pointer to a pointer to one of the SDK's typed exceptions).
func wantErrorAs[T error](t *testing.T, err error) T {
	t.Helper()
	var target T
	if !errors.As(err, &target) {
		t.Fatalf("error %v (%T) is not %T", err, err, target)
	}
	return target
}

var ctx = context.Background()
