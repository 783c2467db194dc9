package kmstest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"gorm.io/gorm"

	"github.com/kmsgo/kmsgo/hsm"
	"github.com/kmsgo/kmsgo/jobs"
	"github.com/kmsgo/kmsgo/server/config"
	"github.com/kmsgo/kmsgo/server/internal/auth"
	"github.com/kmsgo/kmsgo/server/internal/httpapi"
	"github.com/kmsgo/kmsgo/server/internal/kmsdinternal"
	"github.com/kmsgo/kmsgo/server/kmsd"
)

// Server is a running in-process kmsd.
type Server struct {
	URL             string // base URL, e.g. http://127.0.0.1:41234
	AccessKeyID     string // admin access key (policy: everything)
	SecretAccessKey string
	Region          string

	App  *kmsd.App
	HTTP *httptest.Server
}

// Option changes how Start builds the server.
type Option func(*options)

type options struct {
	db     *gorm.DB
	hsm    hsm.Backend
	dir    string
	mutate []func(*config.Config)
	log    *slog.Logger
	extra  []httpapi.Route
	jobs   []jobs.Job
}

// WithDB runs the server on db (already open; not closed by the server).
// Two servers on one db stand for two replicas.
func WithDB(db *gorm.DB) Option { return func(o *options) { o.db = db } }

// WithHSM runs the server on backend (not closed by the server). Replicas
// sharing a database must share the HSM (its keys).
func WithHSM(b hsm.Backend) Option { return func(o *options) { o.hsm = b } }

// WithDataDir uses dir as the data directory instead of a fresh temp dir
// (replicas share the audit chain key kept there).
func WithDataDir(dir string) Option { return func(o *options) { o.dir = dir } }

// WithConfig lets the caller adjust the configuration before start.
func WithConfig(f func(*config.Config)) Option {
	return func(o *options) { o.mutate = append(o.mutate, f) }
}

// WithLogger sends the server's request log to l (default: discarded).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithExtra mounts more authenticated routes (httpapi.Options.Extra), for
// testing another protocol adapter behind kmsd's authentication and audit.
func WithExtra(routes ...httpapi.Route) Option {
	return func(o *options) { o.extra = append(o.extra, routes...) }
}

// WithJobs adds jobs to the server's scheduler next to the maintenance
// jobs (kmsd.Deps.Jobs): they run under the same lease and show in
// GET /v1/jobs, for testing the jobs routes with a job the test controls.
func WithJobs(js ...jobs.Job) Option {
	return func(o *options) { o.jobs = append(o.jobs, js...) }
}

// Start starts a kmsd and registers its shutdown with t.Cleanup.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	var o options
	for _, f := range opts {
		f(&o)
	}
	if o.dir == "" {
		o.dir = t.TempDir()
	}
	c := config.Defaults()
	c.DataDir = o.dir
	for _, f := range o.mutate {
		f(&c)
	}
	ctx := context.Background()
	app, err := kmsd.Open(ctx, c, kmsd.Deps{DB: o.db, HSM: o.hsm, Extra: o.extra, Jobs: o.jobs}, o.log)
	if err != nil {
		t.Fatalf("kmstest: open: %v", err)
	}
	ak, secret, err := kmsdinternal.Of(app).Auth.CreateAccessKey(ctx, "kmstest admin", auth.AdminPolicy())
	if err != nil {
		_ = app.Close()
		t.Fatalf("kmstest: admin key: %v", err)
	}
	hs := httptest.NewServer(app.Handler())
	s := &Server{URL: hs.URL, AccessKeyID: ak.ID, SecretAccessKey: secret, Region: c.Region, App: app, HTTP: hs}
	t.Cleanup(func() {
		hs.Close()
		_ = app.Close()
	})
	return s
}

// CreateAccessKey creates an access key with the given policy document
// (JSON, see API.md) directly in the server's store and returns its id and
// secret. It fails the test on error.
func (s *Server) CreateAccessKey(t testing.TB, policyJSON string) (id, secret string) {
	t.Helper()
	p, err := auth.ParsePolicy([]byte(policyJSON))
	if err != nil {
		t.Fatalf("kmstest: policy: %v", err)
	}
	ak, secret, err := kmsdinternal.Of(s.App).Auth.CreateAccessKey(context.Background(), "kmstest limited", p)
	if err != nil {
		t.Fatalf("kmstest: create access key: %v", err)
	}
	return ak.ID, secret
}

// Sign signs r for this server with SigV4 (service kms) using the given
// credentials and body, setting X-Amz-Date and X-Amz-Content-Sha256.
func (s *Server) Sign(r *http.Request, accessKeyID, secret string, body []byte, at time.Time) error {
	sum := sha256.Sum256(body)
	h := hex.EncodeToString(sum[:])
	r.Header.Set("X-Amz-Content-Sha256", h)
	return v4.NewSigner().SignHTTP(r.Context(), aws.Credentials{AccessKeyID: accessKeyID, SecretAccessKey: secret},
		r, h, "kms", s.Region, at)
}

// Do sends a request signed with the admin credentials and returns the
// status and body. body may be nil, a []byte or any value to encode as JSON.
func (s *Server) Do(t testing.TB, method, path string, body any) (int, []byte) {
	t.Helper()
	return s.DoAs(t, s.AccessKeyID, s.SecretAccessKey, method, path, body)
}

// DoAs is Do with other credentials.
func (s *Server) DoAs(t testing.TB, accessKeyID, secret, method, path string, body any) (int, []byte) {
	t.Helper()
	var raw []byte
	switch b := body.(type) {
	case nil:
	case []byte:
		raw = b
	case string:
		raw = []byte(b)
	default:
		var err error
		if raw, err = json.Marshal(b); err != nil {
			t.Fatalf("kmstest: encode body: %v", err)
		}
	}
	req, err := http.NewRequest(method, s.URL+path, bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("kmstest: %v", err)
	}
	if raw != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if err := s.Sign(req, accessKeyID, secret, raw, time.Now()); err != nil {
		t.Fatalf("kmstest: sign: %v", err)
	}
	resp, err := s.HTTP.Client().Do(req)
	if err != nil {
		t.Fatalf("kmstest: %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("kmstest: read: %v", err)
	}
	return resp.StatusCode, out
}

// FlushAudit waits until every audit record the server has written is in
// its database: with the audit spool (on by default with SQLite) records
// reach the table in the background, so a test that reads
// kms_audit_records directly calls this first. It fails the test on error.
func (s *Server) FlushAudit(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.App.Audit.Flush(ctx); err != nil {
		t.Fatalf("kmstest: flush audit: %v", err)
	}
}
