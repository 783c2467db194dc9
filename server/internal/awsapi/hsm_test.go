package awsapi_test

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/kmsgo/kmsgo/hsm"
	"github.com/kmsgo/kmsgo/hsm/devhsm"
	"github.com/kmsgo/kmsgo/hsm/p11/softhsmtest"
	"github.com/kmsgo/kmsgo/server/kmstest"
)

// TestOnSoftHSM uses an HSM-protected key (each version a non-extractable
// object on a real PKCS#11 token) through the AWS protocol.
func TestOnSoftHSM(t *testing.T) {
	srv := kmstest.Start(t, kmstest.WithHSM(softhsmtest.Backend(t)))
	st, body := srv.Do(t, http.MethodPost, "/v1/keys", map[string]any{"protection_level": "HSM", "alias": "alias/hsm"})
	if st != http.StatusCreated {
		t.Fatalf("create HSM key: %d %s", st, body)
	}
	c := adminClient(srv)
	enc := must[*kms.EncryptOutput](t)(c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String("alias/hsm"), Plaintext: []byte("on a token")}))
	dec := must[*kms.DecryptOutput](t)(c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob}))
	if string(dec.Plaintext) != "on a token" {
		t.Fatalf("decrypt %q", dec.Plaintext)
	}
	r := must[*kms.GenerateRandomOutput](t)(c.GenerateRandom(ctx, &kms.GenerateRandomInput{NumberOfBytes: aws.Int32(16)}))
	if len(r.Plaintext) != 16 {
		t.Fatalf("random %d bytes", len(r.Plaintext))
	}
}

// downHSM is a real dev backend whose Random can be made to fail with
// hsm.ErrUnavailable, standing in for an HSM outage (a real token cannot be
// made to have one on demand in a unit test).
type downHSM struct {
	hsm.Backend
	down atomic.Bool
}

func (d *downHSM) Random(ctx context.Context, n int) ([]byte, error) {
	if d.down.Load() {
		return nil, fmt.Errorf("%w: injected outage", hsm.ErrUnavailable)
	}
	return d.Backend.Random(ctx, n)
}

// TestHSMOutageIsRetryable: an HSM outage is DependencyTimeoutException
// (503), which SDKs retry; the client sees success once the HSM is back.
func TestHSMOutageIsRetryable(t *testing.T) {
	dev, err := devhsm.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dev.Close() })
	b := &downHSM{Backend: dev}
	srv := kmstest.Start(t, kmstest.WithHSM(b))
	c := adminClient(srv)
	b.down.Store(true)
	_, err = c.GenerateRandom(ctx, &kms.GenerateRandomInput{NumberOfBytes: aws.Int32(8)})
	wantExc[*types.DependencyTimeoutException](t, err, http.StatusServiceUnavailable)

	// With the SDK's standard retryer the 503 is retried: the HSM comes back
	// after the first failed attempt.
	attempts := 0
	retrying := kms.New(kms.Options{
		Region: srv.Region, BaseEndpoint: aws.String(srv.URL), HTTPClient: countingClient{srv.HTTP.Client(), func() {
			attempts++
			if attempts == 2 {
				b.down.Store(false)
			}
		}},
		Credentials: adminClient(srv).Options().Credentials, RetryMaxAttempts: 3,
	})
	if _, err := retrying.GenerateRandom(ctx, &kms.GenerateRandomInput{NumberOfBytes: aws.Int32(8)}); err != nil {
		t.Fatalf("after retry: %v", err)
	}
	if attempts != 2 {
		t.Fatalf("%d attempts, want 2", attempts)
	}
	// The failed attempt is in the audit log with the /v1 code.
	var found bool
	for _, r := range auditRecords(t, srv) {
		if r.Action == "kms:GenerateRandom" && r.ReasonCode == "HSMUnavailable" && r.Details["aws_error"] == "DependencyTimeoutException" {
			found = true
		}
	}
	if !found {
		t.Fatal("the outage is not audited")
	}
}

type countingClient struct {
	c      *http.Client
	before func()
}

func (cc countingClient) Do(r *http.Request) (*http.Response, error) {
	cc.before()
	return cc.c.Do(r)
}
