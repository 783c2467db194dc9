package auth

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"gorm.io/gorm"

	"github.com/kmsgo/kmsgo/hsm"
	"github.com/kmsgo/kmsgo/hsm/devhsm"
	"github.com/kmsgo/kmsgo/server/internal/migrate"
)

// testBackend returns the development software HSM in a fresh directory.
func testBackend(t testing.TB) hsm.Backend {
	t.Helper()
	b, err := devhsm.Open(t.TempDir())
	if err != nil {
		t.Fatalf("devhsm.Open: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// fakeClock is an adjustable clock for Config.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(t time.Time) *fakeClock { return &fakeClock{t: t} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

var testStart = time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)

// newService migrates db and returns a Service over it.
func newService(t testing.TB, db *gorm.DB, be hsm.Backend, cfg Config) *Service {
	t.Helper()
	if err := migrate.Apply(db, Migrations()...); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	s, err := New(db, be, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

// putKey stores an access key with a chosen id and secret (as the golden
// tests need AKIDEXAMPLE).
func putKey(t testing.TB, s *Service, id, secret string, p Policy, st Status) {
	t.Helper()
	ctx := context.Background()
	wrapped, err := s.hsm.WrapKey(ctx, []byte(secret), secretAAD(id))
	if err != nil {
		t.Fatalf("wrap: %v", err)
	}
	pj, err := encodePolicy(p)
	if err != nil {
		t.Fatalf("policy: %v", err)
	}
	now := s.now().UTC().Truncate(time.Second)
	row := &accessKeyRow{ID: id, Description: "test", Status: string(st), Policy: pj,
		WrappedSecret: wrapped, CreatedAt: now, UpdatedAt: now}
	if err := s.db.Create(row).Error; err != nil {
		t.Fatalf("create: %v", err)
	}
}

// clientRequest describes a request as a client builds it before signing.
type clientRequest struct {
	method  string
	url     string
	body    []byte
	headers map[string]string
}

// sign signs cr with aws-sdk-go-v2's signer as a client would, sends it
// through the HTTP/1.1 wire format and returns the request as a server
// receives it, plus its body.
func sign(t testing.TB, cr clientRequest, ak, secret, region, service string, at time.Time) (*http.Request, []byte) {
	t.Helper()
	var body *bytes.Reader
	if cr.body != nil {
		body = bytes.NewReader(cr.body)
	} else {
		body = bytes.NewReader(nil)
	}
	req, err := http.NewRequest(cr.method, cr.url, body)
	if err != nil {
		t.Fatalf("NewRequest: %v", err)
	}
	if cr.body == nil {
		req.Body = http.NoBody
		req.ContentLength = 0
	}
	sum := sha256.Sum256(cr.body)
	hash := hex.EncodeToString(sum[:])
	req.Header.Set("X-Amz-Content-Sha256", hash)
	for k, v := range cr.headers {
		req.Header.Set(k, v)
	}
	creds := aws.Credentials{AccessKeyID: ak, SecretAccessKey: secret}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hash, service, region, at); err != nil {
		t.Fatalf("SignHTTP: %v", err)
	}
	return wire(t, req)
}

// wire writes a client request in HTTP/1.1 form and parses it back as a
// server does.
func wire(t testing.TB, req *http.Request) (*http.Request, []byte) {
	t.Helper()
	var buf bytes.Buffer
	if err := req.Write(&buf); err != nil {
		t.Fatalf("write request: %v", err)
	}
	srv, err := http.ReadRequest(bufio.NewReader(&buf))
	if err != nil {
		t.Fatalf("read request: %v", err)
	}
	var b bytes.Buffer
	if _, err := b.ReadFrom(srv.Body); err != nil {
		t.Fatalf("read body: %v", err)
	}
	return srv, b.Bytes()
}
