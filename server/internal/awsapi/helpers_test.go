package awsapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/smithy-go"

	"github.com/kmsgo/kmsgo/server/kmstest"
)

var ctx = context.Background()

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

// status returns the HTTP status of an SDK error (0 if it has none).
func status(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// wantExc fails unless errors.As(err, *T) holds for the SDK's typed
// exception T and the answer had HTTP status code.
func wantExc[T error](t *testing.T, err error, code int) T {
	t.Helper()
	var target T
	if !errors.As(err, &target) {
		t.Fatalf("error %v (%T) is not %T", err, err, target)
	}
	if got := status(err); got != code {
		t.Fatalf("%T: HTTP status %d, want %d", target, got, code)
	}
	return target
}

// wantCode fails unless err is an AWS API error with the given code and
// status (for AWS's common errors, which have no typed exception in
// service/kms/types).
func wantCode(t *testing.T, err error, code string, httpStatus int) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("error %v (%T) is not an API error, want %s", err, err, code)
	}
	if ae.ErrorCode() != code {
		t.Fatalf("error code %s (%v), want %s", ae.ErrorCode(), err, code)
	}
	if got := status(err); got != httpStatus {
		t.Fatalf("%s: HTTP status %d, want %d", code, got, httpStatus)
	}
}

func must[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// rawCall sends a hand-made AWS protocol request signed with the admin key
// (unsigned when sign is false) and returns status, headers and the body.
func rawCall(t *testing.T, srv *kmstest.Server, target, contentType string, body []byte, sign bool) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if target != "" {
		req.Header.Set("X-Amz-Target", target)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if sign {
		if err := srv.Sign(req, srv.AccessKeyID, srv.SecretAccessKey, body, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := srv.HTTP.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

// awsError decodes AWS's JSON error shape and checks it has exactly the
// fields __type and message.
func awsError(t *testing.T, body []byte) (typ, msg string) {
	t.Helper()
	var m map[string]string
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("error body %s: %v", body, err)
	}
	if len(m) != 2 || m["__type"] == "" || m["message"] == "" {
		t.Fatalf("error body %s is not {__type, message}", body)
	}
	return m["__type"], m["message"]
}
