package ormplugin

// This file is the ONE place where tests, benchmarks and examples get their
// KMS: a real kmsd running in-process (server/kmstest: the full HTTP handler
// with SigV4, policies and audit, SQLite and the development HSM backend)
// reached through starter/kmsclient over HTTP. The only thing simulated is a
// network outage (SetReachable), done in the client's HTTP transport.

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/kmsgo/kmsgo/server/kmstest"
	"github.com/kmsgo/kmsgo/starter/kmsclient"
)

const testKeyID = "alias/orders"

// testKMS is what tests need from a KMS: the plugin interfaces plus test
// controls.
type testKMS interface {
	KMS
	ReEncrypter
	// SetReachable(false) makes every call fail as if kmsd were down.
	SetReachable(bool)
	// Rotate adds a new primary master key version.
	Rotate()
}

// callCounter counts KMS calls made through the test KMS.
type callCounter struct {
	generate, decrypt, reencrypt atomic.Int64
}

func (c *callCounter) total() int64 { return c.generate.Load() + c.decrypt.Load() + c.reencrypt.Load() }

// newTestKMS starts an in-process kmsd with a master key aliased
// alias/orders and returns a counting kmsclient for it. Everything is torn
// down by t.Cleanup.
func newTestKMS(t testing.TB) (testKMS, *callCounter) {
	t.Helper()
	srv := kmstest.Start(t)
	status, body := srv.Do(t, http.MethodPost, "/v1/keys", map[string]any{"alias": testKeyID, "description": "ormplugin tests"})
	if status != http.StatusCreated {
		t.Fatalf("create key: %d %s", status, body)
	}
	var meta struct {
		KeyID string `json:"key_id"`
	}
	if err := json.Unmarshal(body, &meta); err != nil || meta.KeyID == "" {
		t.Fatalf("create key: %v %s", err, body)
	}
	k := &realKMS{t: t, srv: srv, keyID: meta.KeyID, calls: &callCounter{}}
	k.up.Store(true)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	client, err := kmsclient.New(kmsclient.Config{
		Endpoint: srv.URL, AccessKeyID: srv.AccessKeyID, SecretAccessKey: srv.SecretAccessKey, Region: srv.Region,
		HTTPClient: &http.Client{Transport: outageTransport{up: &k.up, next: tr}},
		MaxRetries: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	k.client = client
	return k, k.calls
}

// outageTransport fails every request with "connection refused" while down.
type outageTransport struct {
	up   *atomic.Bool
	next http.RoundTripper
}

func (o outageTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if !o.up.Load() {
		if r.Body != nil {
			_ = r.Body.Close()
		}
		return nil, &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}
	}
	return o.next.RoundTrip(r)
}

type realKMS struct {
	t      testing.TB
	srv    *kmstest.Server
	client *kmsclient.Client
	keyID  string
	calls  *callCounter
	up     atomic.Bool
}

func (k *realKMS) SetReachable(ok bool) { k.up.Store(ok) }

func (k *realKMS) Rotate() {
	if status, body := k.srv.Do(k.t, http.MethodPost, "/v1/keys/"+k.keyID+"/rotate", nil); status != http.StatusOK {
		k.t.Fatalf("rotate: %d %s", status, body)
	}
}

func (k *realKMS) GenerateDataKey(ctx context.Context, keyID string, encCtx map[string]string) (*DataKey, error) {
	k.calls.generate.Add(1)
	return k.client.GenerateDataKey(ctx, keyID, encCtx)
}

func (k *realKMS) Decrypt(ctx context.Context, blob []byte, encCtx map[string]string) (*DecryptResult, error) {
	k.calls.decrypt.Add(1)
	return k.client.Decrypt(ctx, blob, encCtx)
}

func (k *realKMS) ReEncrypt(ctx context.Context, blob []byte, srcCtx map[string]string, dstKeyID string, dstCtx map[string]string) (*ReEncryptResult, error) {
	k.calls.reencrypt.Add(1)
	return k.client.ReEncrypt(ctx, blob, srcCtx, dstKeyID, dstCtx)
}

// exampleTB lets Examples (which have no *testing.T) call newTestKMS. Only
// the methods kmstest and newTestKMS use are implemented.
type exampleTB struct {
	testing.TB
	dir      string
	cleanups []func()
}

func newExampleTB() *exampleTB {
	dir, err := os.MkdirTemp("", "ormplugin-example-kms")
	if err != nil {
		panic(err)
	}
	return &exampleTB{dir: dir}
}

func (e *exampleTB) Helper()                   {}
func (e *exampleTB) Cleanup(f func())          { e.cleanups = append(e.cleanups, f) }
func (e *exampleTB) TempDir() string           { return e.dir }
func (e *exampleTB) Name() string              { return "Example" }
func (e *exampleTB) Logf(string, ...any)       {}
func (e *exampleTB) Fatal(args ...any)         { panic(errors.New("example: fatal")) }
func (e *exampleTB) Fatalf(f string, a ...any) { panic(errors.New("example: " + f)) }
func (e *exampleTB) Errorf(f string, a ...any) { panic(errors.New("example: " + f)) }

// close runs the cleanups and removes the temporary directory.
func (e *exampleTB) close() {
	for i := len(e.cleanups) - 1; i >= 0; i-- {
		e.cleanups[i]()
	}
	_ = os.RemoveAll(e.dir)
}
