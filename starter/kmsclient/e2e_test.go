package kmsclient_test

// End-to-end tests of the client against a real in-process kmsd
// (server/kmstest: full handler, SigV4 auth, policies, audit, SQLite and the
// development HSM backend). Nothing here is a double: every assertion is on
// what the real server answered.

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/kmsgo/kmsgo/server/config"
	"github.com/kmsgo/kmsgo/server/kmstest"
	"github.com/kmsgo/kmsgo/starter/kmsclient"
)

// e2eCounter is an http.RoundTripper that counts the requests sent per URL
// path, so tests can prove how many attempts a call made (no retries).
type e2eCounter struct {
	next http.RoundTripper
	mu   sync.Mutex
	n    map[string]int
}

func (c *e2eCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.n[r.URL.Path]++
	c.mu.Unlock()
	return c.next.RoundTrip(r)
}

// count returns how many requests went to path.
func (c *e2eCounter) count(path string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[path]
}

// total returns how many requests were sent.
func (c *e2eCounter) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := 0
	for _, v := range c.n {
		s += v
	}
	return s
}

type e2eEnv struct {
	srv     *kmstest.Server
	admin   *kmsclient.Client
	counter *e2eCounter
}

// e2eStart starts a kmsd and an admin client whose requests are counted.
func e2eStart(t *testing.T, opts ...kmstest.Option) *e2eEnv {
	t.Helper()
	srv := kmstest.Start(t, opts...)
	cnt := &e2eCounter{next: srv.HTTP.Client().Transport, n: map[string]int{}}
	c := e2eClient(t, srv, srv.AccessKeyID, srv.SecretAccessKey, cnt, nil)
	return &e2eEnv{srv: srv, admin: c, counter: cnt}
}

// e2eClient builds a client for srv with the given credentials. rt, when
// not nil, carries the requests; mod adjusts the config.
func e2eClient(t *testing.T, srv *kmstest.Server, ak, sk string, rt http.RoundTripper, mod func(*kmsclient.Config)) *kmsclient.Client {
	t.Helper()
	if rt == nil {
		rt = srv.HTTP.Client().Transport
	}
	cfg := kmsclient.Config{
		Endpoint: srv.URL, AccessKeyID: ak, SecretAccessKey: sk, Region: srv.Region,
		HTTPClient: &http.Client{Transport: rt},
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := kmsclient.New(cfg)
	if err != nil {
		t.Fatalf("kmsclient.New: %v", err)
	}
	return c
}

// e2eKey creates a key with the given alias (may be empty).
func e2eKey(t *testing.T, c *kmsclient.Client, alias string) *kmsclient.KeyMetadata {
	t.Helper()
	md, err := c.CreateKey(context.Background(), kmsclient.CreateKeyInput{Description: "e2e " + alias, Alias: alias})
	if err != nil {
		t.Fatalf("CreateKey(%q): %v", alias, err)
	}
	return md
}

func TestE2EKeysAndAliases(t *testing.T) {
	e := e2eStart(t)
	ctx := context.Background()
	md := e2eKey(t, e.admin, "alias/orders")
	if md.KeyState != kmsclient.KeyStateEnabled || md.PrimaryVersion != 1 || md.KeySpec != kmsclient.KeySpecAES256 ||
		md.ProtectionLevel != kmsclient.ProtectionSoftware || md.Origin != kmsclient.OriginKMS {
		t.Fatalf("new key metadata = %+v", md)
	}
	// The prefix is added when missing.
	if a, err := e.admin.CreateAlias(ctx, "orders-eu", md.KeyID); err != nil || a.AliasName != "alias/orders-eu" || a.KeyID != md.KeyID {
		t.Fatalf("CreateAlias = %+v, %v", a, err)
	}
	if _, err := e.admin.CreateAlias(ctx, "alias/orders", md.KeyID); !errors.Is(err, kmsclient.ErrAlreadyExists) {
		t.Fatalf("duplicate alias: err = %v, want ErrAlreadyExists", err)
	}
	for _, name := range []string{"orders", "alias/orders", "orders-eu"} {
		a, err := e.admin.GetAlias(ctx, name)
		if err != nil || a.KeyID != md.KeyID {
			t.Fatalf("GetAlias(%q) = %+v, %v", name, a, err)
		}
	}
	if _, err := e.admin.GetAlias(ctx, "nope"); !errors.Is(err, kmsclient.ErrNotFound) {
		t.Fatalf("GetAlias(unknown): err = %v, want ErrNotFound", err)
	}
	got, err := e.admin.DescribeKey(ctx, md.KeyID)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got.Aliases, ",") != "alias/orders,alias/orders-eu" {
		t.Fatalf("aliases = %v", got.Aliases)
	}
	als, err := e.admin.ListAliases(ctx, md.KeyID)
	if err != nil || len(als) != 2 {
		t.Fatalf("ListAliases = %+v, %v", als, err)
	}
	// Encrypt through the alias names the key behind it.
	enc, err := e.admin.Encrypt(ctx, "alias/orders-eu", []byte("x"), nil)
	if err != nil || enc.KeyID != md.KeyID || enc.KeyVersion != 1 {
		t.Fatalf("Encrypt via alias = %+v, %v", enc, err)
	}
}

func TestE2EEncryptionContext(t *testing.T) {
	e := e2eStart(t)
	ctx := context.Background()
	md := e2eKey(t, e.admin, "alias/cfg")
	encCtx := map[string]string{"app": "billing", "field": "db_password"}
	pt := []byte("s3cret-db-password")
	enc, err := e.admin.Encrypt(ctx, "alias/cfg", pt, encCtx)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(enc.CiphertextBlob, pt) {
		t.Fatal("ciphertext contains the plaintext")
	}
	tampered := bytes.Clone(enc.CiphertextBlob)
	tampered[len(tampered)-1] ^= 1

	tests := []struct {
		name   string
		blob   []byte
		encCtx map[string]string
		ok     bool
	}{
		{"same context", enc.CiphertextBlob, map[string]string{"field": "db_password", "app": "billing"}, true},
		{"different value", enc.CiphertextBlob, map[string]string{"app": "billing", "field": "api_token"}, false},
		{"case differs", enc.CiphertextBlob, map[string]string{"app": "Billing", "field": "db_password"}, false},
		{"missing pair", enc.CiphertextBlob, map[string]string{"app": "billing"}, false},
		{"extra pair", enc.CiphertextBlob, map[string]string{"app": "billing", "field": "db_password", "x": "y"}, false},
		{"no context", enc.CiphertextBlob, nil, false},
		{"tampered blob", tampered, encCtx, false},
		{"garbage blob", []byte("not a ciphertext at all"), encCtx, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := e.counter.count("/v1/decrypt")
			dec, err := e.admin.Decrypt(ctx, tc.blob, tc.encCtx)
			if sent := e.counter.count("/v1/decrypt") - before; sent != 1 {
				t.Fatalf("sent %d decrypt requests, want exactly 1 (no retry)", sent)
			}
			if tc.ok {
				if err != nil || !bytes.Equal(dec.Plaintext, pt) || dec.KeyID != md.KeyID || dec.KeyVersion != 1 {
					t.Fatalf("Decrypt = %+v, %v", dec, err)
				}
				return
			}
			if !errors.Is(err, kmsclient.ErrInvalidCiphertext) {
				t.Fatalf("err = %v, want ErrInvalidCiphertext", err)
			}
			var ae *kmsclient.APIError
			if !errors.As(err, &ae) || ae.StatusCode != http.StatusBadRequest || ae.RequestID == "" {
				t.Fatalf("err = %#v, want a 400 APIError with a request id", err)
			}
			if kmsclient.IsRetryable(err) {
				t.Fatal("InvalidCiphertext reported as retryable")
			}
		})
	}

	// DecryptWithKeyID refuses a blob made under another key.
	other := e2eKey(t, e.admin, "alias/other")
	for _, id := range []string{other.KeyID, "alias/other", "alias/no-such-alias"} {
		if _, err := e.admin.DecryptWithKeyID(ctx, id, enc.CiphertextBlob, encCtx); !errors.Is(err, kmsclient.ErrInvalidCiphertext) {
			t.Fatalf("DecryptWithKeyID(%s): err = %v, want ErrInvalidCiphertext", id, err)
		}
	}
	if dec, err := e.admin.DecryptWithKeyID(ctx, "alias/cfg", enc.CiphertextBlob, encCtx); err != nil || !bytes.Equal(dec.Plaintext, pt) {
		t.Fatalf("DecryptWithKeyID(own alias) = %+v, %v", dec, err)
	}
}

func TestE2EEnvelope(t *testing.T) {
	e := e2eStart(t)
	ctx := context.Background()
	e2eKey(t, e.admin, "alias/files")
	encCtx := map[string]string{"file": "report.csv"}

	dk, err := e.admin.GenerateDataKey(ctx, "alias/files", encCtx)
	if err != nil {
		t.Fatal(err)
	}
	if len(dk.Plaintext) != 32 || len(dk.CiphertextBlob) == 0 || bytes.Contains(dk.CiphertextBlob, dk.Plaintext) {
		t.Fatalf("data key: %d-byte plaintext, %d-byte blob", len(dk.Plaintext), len(dk.CiphertextBlob))
	}
	data := bytes.Repeat([]byte("id,email\n1,alice@example.com\n"), 100)
	sealed := e2eSeal(t, dk.Plaintext, data)
	clear(dk.Plaintext)

	// Later: only sealed and dk.CiphertextBlob were stored.
	back, err := e.admin.Decrypt(ctx, dk.CiphertextBlob, encCtx)
	if err != nil {
		t.Fatal(err)
	}
	defer clear(back.Plaintext)
	if got := e2eOpen(t, back.Plaintext, sealed); !bytes.Equal(got, data) {
		t.Fatal("envelope round trip changed the data")
	}
	if _, err := e.admin.Decrypt(ctx, dk.CiphertextBlob, map[string]string{"file": "other.csv"}); !errors.Is(err, kmsclient.ErrInvalidCiphertext) {
		t.Fatalf("data key under another context: err = %v", err)
	}

	// Without plaintext: only the blob, which still decrypts to a 32-byte key.
	np, err := e.admin.GenerateDataKeyWithoutPlaintext(ctx, "alias/files", encCtx)
	if err != nil || np.Plaintext != nil || len(np.CiphertextBlob) == 0 {
		t.Fatalf("GenerateDataKeyWithoutPlaintext = %+v, %v", np, err)
	}
	if d, err := e.admin.Decrypt(ctx, np.CiphertextBlob, encCtx); err != nil || len(d.Plaintext) != 32 {
		t.Fatalf("decrypt of key without plaintext: %v", err)
	}
}

func e2eSeal(t *testing.T, key, data []byte) []byte {
	t.Helper()
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	nonce := make([]byte, gcm.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		t.Fatal(err)
	}
	return gcm.Seal(nonce, nonce, data, nil)
}

func e2eOpen(t *testing.T, key, sealed []byte) []byte {
	t.Helper()
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	n := gcm.NonceSize()
	out, err := gcm.Open(nil, sealed[:n], sealed[n:], nil)
	if err != nil {
		t.Fatalf("local AES-GCM open: %v", err)
	}
	return out
}

func TestE2EDecryptBatch(t *testing.T) {
	e := e2eStart(t)
	ctx := context.Background()
	a := e2eKey(t, e.admin, "alias/a")
	b := e2eKey(t, e.admin, "alias/b")
	ctxA := map[string]string{"n": "1"}
	encA, err := e.admin.Encrypt(ctx, "alias/a", []byte("value-a"), ctxA)
	if err != nil {
		t.Fatal(err)
	}
	encB, err := e.admin.Encrypt(ctx, "alias/b", []byte("value-b"), nil)
	if err != nil {
		t.Fatal(err)
	}
	items := []kmsclient.DecryptItem{
		{CiphertextBlob: encA.CiphertextBlob, EncryptionContext: ctxA},
		{CiphertextBlob: encA.CiphertextBlob, EncryptionContext: map[string]string{"n": "2"}},
		{CiphertextBlob: encB.CiphertextBlob},
		{CiphertextBlob: []byte("garbage")},
		{CiphertextBlob: encB.CiphertextBlob, EncryptionContext: ctxA},
	}
	want := []struct {
		keyID string
		pt    string // "" means the item fails with InvalidCiphertext
	}{{a.KeyID, "value-a"}, {}, {b.KeyID, "value-b"}, {}, {}}

	before := e.counter.count("/v1/decrypt/batch")
	res, err := e.admin.DecryptBatch(ctx, items)
	if err != nil {
		t.Fatal(err)
	}
	if sent := e.counter.count("/v1/decrypt/batch") - before; sent != 1 {
		t.Fatalf("sent %d batch requests, want 1", sent)
	}
	if len(res) != len(items) {
		t.Fatalf("%d results for %d items", len(res), len(items))
	}
	for i, w := range want {
		r := res[i]
		if w.pt == "" {
			if !errors.Is(r.Err, kmsclient.ErrInvalidCiphertext) || r.Plaintext != nil {
				t.Errorf("item %d: %+v, want ErrInvalidCiphertext", i, r)
			}
			continue
		}
		if r.Err != nil || string(r.Plaintext) != w.pt || r.KeyID != w.keyID || r.KeyVersion != 1 {
			t.Errorf("item %d: %+v, want %q under %s", i, r, w.pt, w.keyID)
		}
	}

	// Per-item key-state and policy failures do not fail the others.
	if _, err := e.admin.DisableKey(ctx, b.KeyID); err != nil {
		t.Fatal(err)
	}
	mixed := []kmsclient.DecryptItem{items[0], items[2]}
	res, err = e.admin.DecryptBatch(ctx, mixed)
	if err != nil || len(res) != 2 || res[0].Err != nil || !errors.Is(res[1].Err, kmsclient.ErrInvalidKeyState) {
		t.Fatalf("batch with a disabled key: %+v, %v", res, err)
	}
	if _, err := e.admin.EnableKey(ctx, b.KeyID); err != nil {
		t.Fatal(err)
	}
	id, secret := e.srv.CreateAccessKey(t, `{"statements":[{"effect":"Allow","actions":["kms:Decrypt"],"resources":["alias/a"]}]}`)
	onlyA := e2eClient(t, e.srv, id, secret, nil, nil)
	res, err = onlyA.DecryptBatch(ctx, mixed)
	if err != nil || len(res) != 2 || string(res[0].Plaintext) != "value-a" || !errors.Is(res[1].Err, kmsclient.ErrAccessDenied) {
		t.Fatalf("batch with a key outside the policy: %+v, %v", res, err)
	}

	// More than MaxBatchItems are split into several requests, in order.
	many := make([]kmsclient.DecryptItem, kmsclient.MaxBatchItems+5)
	for i := range many {
		many[i] = items[i%2]
	}
	before = e.counter.count("/v1/decrypt/batch")
	res, err = e.admin.DecryptBatch(ctx, many)
	if err != nil {
		t.Fatal(err)
	}
	if sent := e.counter.count("/v1/decrypt/batch") - before; sent != 2 {
		t.Fatalf("sent %d batch requests for %d items, want 2", sent, len(many))
	}
	for i, r := range res {
		if ok := r.Err == nil; ok != (i%2 == 0) {
			t.Fatalf("item %d of split batch: %+v", i, r)
		}
	}
}

func TestE2EReEncryptAfterRotate(t *testing.T) {
	e := e2eStart(t)
	ctx := context.Background()
	md := e2eKey(t, e.admin, "alias/rot")
	dst := e2eKey(t, e.admin, "alias/rot-dst")
	src := map[string]string{"row": "7"}
	v1, err := e.admin.Encrypt(ctx, "alias/rot", []byte("payload"), src)
	if err != nil {
		t.Fatal(err)
	}
	rotated, err := e.admin.RotateKey(ctx, md.KeyID)
	if err != nil || rotated.PrimaryVersion != 2 {
		t.Fatalf("RotateKey = %+v, %v", rotated, err)
	}
	vs, err := e.admin.ListKeyVersions(ctx, md.KeyID)
	if err != nil || len(vs) != 2 {
		t.Fatalf("ListKeyVersions = %+v, %v", vs, err)
	}

	tests := []struct {
		name     string
		dstKeyID string
		dstCtx   map[string]string
		wantKey  string
		wantVer  int
	}{
		{"same key, newest version", "", src, md.KeyID, 2},
		{"same key by alias, new context", "alias/rot", map[string]string{"row": "7", "v": "2"}, md.KeyID, 2},
		{"another key", dst.KeyID, nil, dst.KeyID, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			re, err := e.admin.ReEncrypt(ctx, v1.CiphertextBlob, src, tc.dstKeyID, tc.dstCtx)
			if err != nil {
				t.Fatal(err)
			}
			if re.SourceKeyID != md.KeyID || re.SourceKeyVersion != 1 || re.KeyID != tc.wantKey || re.KeyVersion != tc.wantVer {
				t.Fatalf("ReEncrypt = %+v", re)
			}
			dec, err := e.admin.Decrypt(ctx, re.CiphertextBlob, tc.dstCtx)
			if err != nil || string(dec.Plaintext) != "payload" || dec.KeyVersion != tc.wantVer {
				t.Fatalf("Decrypt(re-encrypted) = %+v, %v", dec, err)
			}
		})
	}
	// The old ciphertext still decrypts (version 1 is not retired), and a
	// wrong source context fails opaquely.
	if dec, err := e.admin.Decrypt(ctx, v1.CiphertextBlob, src); err != nil || dec.KeyVersion != 1 {
		t.Fatalf("Decrypt(v1 after rotation) = %+v, %v", dec, err)
	}
	if _, err := e.admin.ReEncrypt(ctx, v1.CiphertextBlob, nil, "", nil); !errors.Is(err, kmsclient.ErrInvalidCiphertext) {
		t.Fatalf("ReEncrypt with wrong source context: err = %v", err)
	}
	// New encryptions use version 2.
	if enc, err := e.admin.Encrypt(ctx, md.KeyID, []byte("x"), nil); err != nil || enc.KeyVersion != 2 {
		t.Fatalf("Encrypt after rotation = %+v, %v", enc, err)
	}
}

func TestE2EDisabledKey(t *testing.T) {
	e := e2eStart(t)
	ctx := context.Background()
	md := e2eKey(t, e.admin, "alias/inc")
	enc, err := e.admin.Encrypt(ctx, "alias/inc", []byte("v"), nil)
	if err != nil {
		t.Fatal(err)
	}
	dk, err := e.admin.GenerateDataKey(ctx, "alias/inc", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := e.admin.DisableKey(ctx, md.KeyID); err != nil || got.KeyState != kmsclient.KeyStateDisabled {
		t.Fatalf("DisableKey = %+v, %v", got, err)
	}
	ops := []struct {
		name string
		path string
		call func() error
	}{
		{"Encrypt", "/v1/encrypt", func() error { _, err := e.admin.Encrypt(ctx, "alias/inc", []byte("v"), nil); return err }},
		{"Decrypt", "/v1/decrypt", func() error { _, err := e.admin.Decrypt(ctx, enc.CiphertextBlob, nil); return err }},
		{"Decrypt data key", "/v1/decrypt", func() error { _, err := e.admin.Decrypt(ctx, dk.CiphertextBlob, nil); return err }},
		{"GenerateDataKey", "/v1/generate-data-key", func() error { _, err := e.admin.GenerateDataKey(ctx, md.KeyID, nil); return err }},
		{"ReEncrypt", "/v1/re-encrypt", func() error { _, err := e.admin.ReEncrypt(ctx, enc.CiphertextBlob, nil, "", nil); return err }},
	}
	for _, op := range ops {
		t.Run(op.name, func(t *testing.T) {
			before := e.counter.count(op.path)
			err := op.call()
			if !errors.Is(err, kmsclient.ErrInvalidKeyState) {
				t.Fatalf("err = %v, want ErrInvalidKeyState", err)
			}
			if sent := e.counter.count(op.path) - before; sent != 1 {
				t.Fatalf("sent %d requests, want 1 (409 is not retried)", sent)
			}
		})
	}
	if _, err := e.admin.EnableKey(ctx, md.KeyID); err != nil {
		t.Fatal(err)
	}
	if dec, err := e.admin.Decrypt(ctx, enc.CiphertextBlob, nil); err != nil || string(dec.Plaintext) != "v" {
		t.Fatalf("Decrypt after EnableKey = %+v, %v", dec, err)
	}
}

func TestE2ELimitedAccessKey(t *testing.T) {
	e := e2eStart(t)
	ctx := context.Background()
	orders := e2eKey(t, e.admin, "alias/orders-eu")
	billing := e2eKey(t, e.admin, "alias/billing")
	ordersBlob, err := e.admin.Encrypt(ctx, orders.KeyID, []byte("o"), nil)
	if err != nil {
		t.Fatal(err)
	}
	billingBlob, err := e.admin.Encrypt(ctx, billing.KeyID, []byte("b"), nil)
	if err != nil {
		t.Fatal(err)
	}

	// Issued through the API, as an admin would with kmsctl.
	ak, err := e.admin.CreateAccessKey(ctx, "orders-svc", kmsclient.Policy{Statements: []kmsclient.Statement{{
		Effect:    "Allow",
		Actions:   []string{"kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey*"},
		Resources: []string{"alias/orders-*"},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	if ak.SecretAccessKey == "" {
		t.Fatal("CreateAccessKey returned no secret")
	}
	app := e2eClient(t, e.srv, ak.AccessKeyID, ak.SecretAccessKey, nil, nil)

	tests := []struct {
		name string
		call func() error
		want error // nil: allowed
	}{
		{"encrypt via matching alias", func() error { _, err := app.Encrypt(ctx, "alias/orders-eu", []byte("x"), nil); return err }, nil},
		{"encrypt via key id of an orders-* key", func() error { _, err := app.Encrypt(ctx, orders.KeyID, []byte("x"), nil); return err }, nil},
		{"generate data key", func() error { _, err := app.GenerateDataKey(ctx, "alias/orders-eu", nil); return err }, nil},
		{"generate data key without plaintext", func() error {
			_, err := app.GenerateDataKeyWithoutPlaintext(ctx, "alias/orders-eu", nil)
			return err
		}, nil},
		{"decrypt orders blob", func() error { _, err := app.Decrypt(ctx, ordersBlob.CiphertextBlob, nil); return err }, nil},
		{"encrypt via other alias", func() error { _, err := app.Encrypt(ctx, "alias/billing", []byte("x"), nil); return err }, kmsclient.ErrAccessDenied},
		{"encrypt via other key id", func() error { _, err := app.Encrypt(ctx, billing.KeyID, []byte("x"), nil); return err }, kmsclient.ErrAccessDenied},
		{"decrypt billing blob", func() error { _, err := app.Decrypt(ctx, billingBlob.CiphertextBlob, nil); return err }, kmsclient.ErrAccessDenied},
		{"action not granted on allowed key", func() error { _, err := app.DisableKey(ctx, orders.KeyID); return err }, kmsclient.ErrAccessDenied},
		{"create key", func() error { _, err := app.CreateKey(ctx, kmsclient.CreateKeyInput{}); return err }, kmsclient.ErrAccessDenied},
		{"list keys", func() error { _, err := app.ListKeys(ctx, kmsclient.ListKeysInput{}); return err }, kmsclient.ErrAccessDenied},
		{"create access key", func() error {
			_, err := app.CreateAccessKey(ctx, "escalate", kmsclient.AdminPolicy())
			return err
		}, kmsclient.ErrAccessDenied},
		{"read audit", func() error { _, err := app.VerifyAudit(ctx); return err }, kmsclient.ErrAccessDenied},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if tc.want == nil {
				if err != nil {
					t.Fatalf("err = %v, want allowed", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}

	// A wrong secret for a real access key id is Unauthenticated.
	bad := e2eClient(t, e.srv, ak.AccessKeyID, ak.SecretAccessKey+"x", nil, nil)
	if _, err := bad.Encrypt(ctx, "alias/orders-eu", []byte("x"), nil); !errors.Is(err, kmsclient.ErrUnauthenticated) {
		t.Fatalf("wrong secret: err = %v, want ErrUnauthenticated", err)
	}
	// A disabled access key is refused.
	if _, err := e.admin.DisableAccessKey(ctx, ak.AccessKeyID); err != nil {
		t.Fatal(err)
	}
	if _, err := app.Encrypt(ctx, "alias/orders-eu", []byte("x"), nil); !errors.Is(err, kmsclient.ErrUnauthenticated) {
		t.Fatalf("disabled access key: err = %v, want ErrUnauthenticated", err)
	}

	// kmstest's helper creates limited keys directly in the store.
	id, secret := e.srv.CreateAccessKey(t, `{"statements":[{"effect":"Allow","actions":["kms:Decrypt"],"resources":["alias/orders-*"]}]}`)
	ro := e2eClient(t, e.srv, id, secret, nil, nil)
	if _, err := ro.Decrypt(ctx, ordersBlob.CiphertextBlob, nil); err != nil {
		t.Fatalf("decrypt-only key: Decrypt: %v", err)
	}
	if _, err := ro.Encrypt(ctx, "alias/orders-eu", []byte("x"), nil); !errors.Is(err, kmsclient.ErrAccessDenied) {
		t.Fatalf("decrypt-only key: Encrypt err = %v, want ErrAccessDenied", err)
	}
}

func TestE2ESendNonce(t *testing.T) {
	e := e2eStart(t, kmstest.WithConfig(func(c *config.Config) { c.Auth.RequireNonce = true }))
	ctx := context.Background()
	tests := []struct {
		name  string
		nonce bool
		want  error
	}{
		{"without nonce refused", false, kmsclient.ErrUnauthenticated},
		{"with nonce accepted", true, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := e2eClient(t, e.srv, e.srv.AccessKeyID, e.srv.SecretAccessKey, nil, func(cfg *kmsclient.Config) { cfg.SendNonce = tc.nonce })
			// Several calls in a row: each attempt carries a fresh nonce, so
			// none is taken for a replay.
			for i := 0; i < 3; i++ {
				_, err := c.GenerateRandom(ctx, 16)
				if tc.want == nil && err != nil {
					t.Fatalf("call %d: %v", i, err)
				}
				if tc.want != nil && !errors.Is(err, tc.want) {
					t.Fatalf("call %d: err = %v, want %v", i, err, tc.want)
				}
			}
		})
	}
}

func TestE2ECachedOneGenerateDataKey(t *testing.T) {
	e := e2eStart(t)
	ctx := context.Background()
	e2eKey(t, e.admin, "alias/cache")
	cached, err := kmsclient.NewCached(e.admin, kmsclient.CacheConfig{})
	if err != nil {
		t.Fatal(err)
	}
	encCtx := map[string]string{"table": "users", "column": "email"}
	const uses = 50
	var first *kmsclient.DataKey
	for i := 0; i < uses; i++ {
		dk, err := cached.GenerateDataKey(ctx, "alias/cache", encCtx)
		if err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first = dk
			continue
		}
		if !bytes.Equal(dk.CiphertextBlob, first.CiphertextBlob) || !bytes.Equal(dk.Plaintext, first.Plaintext) {
			t.Fatalf("use %d got a different data key", i)
		}
		if &dk.Plaintext[0] == &first.Plaintext[0] {
			t.Fatal("cached plaintext is shared with the caller, not a copy")
		}
		clear(dk.Plaintext)
	}
	if n := e.counter.count("/v1/generate-data-key"); n != 1 {
		t.Fatalf("%d GenerateDataKey requests for %d uses, want 1", n, uses)
	}
	// Reading back what was just written needs no round trip either.
	dec, err := cached.Decrypt(ctx, first.CiphertextBlob, encCtx)
	if err != nil || !bytes.Equal(dec.Plaintext, first.Plaintext) {
		t.Fatalf("cached Decrypt = %v", err)
	}
	if n := e.counter.count("/v1/decrypt"); n != 0 {
		t.Fatalf("%d Decrypt requests, want 0 (served from the cache)", n)
	}
	// A different context is a different cache entry: one more request.
	if _, err := cached.GenerateDataKey(ctx, "alias/cache", map[string]string{"table": "users", "column": "phone"}); err != nil {
		t.Fatal(err)
	}
	if n := e.counter.count("/v1/generate-data-key"); n != 2 {
		t.Fatalf("%d GenerateDataKey requests after a second context, want 2", n)
	}
	// Errors are not cached; ClearCaches forces a new key.
	cached.ClearCaches()
	dk, err := cached.GenerateDataKey(ctx, "alias/cache", encCtx)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(dk.CiphertextBlob, first.CiphertextBlob) || e.counter.count("/v1/generate-data-key") != 3 {
		t.Fatal("ClearCaches did not force a new data key")
	}
}

func TestE2EAuditVerify(t *testing.T) {
	e := e2eStart(t)
	ctx := context.Background()
	md := e2eKey(t, e.admin, "alias/audited")
	enc, err := e.admin.Encrypt(ctx, md.KeyID, []byte("v"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.Decrypt(ctx, enc.CiphertextBlob, map[string]string{"wrong": "ctx"}); !errors.Is(err, kmsclient.ErrInvalidCiphertext) {
		t.Fatal(err)
	}
	if _, err := e.admin.GenerateDataKey(ctx, md.KeyID, nil); err != nil {
		t.Fatal(err)
	}
	calls := e.counter.total()

	res, err := e.admin.VerifyAudit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK || res.FirstBroken != nil || res.Checked < int64(calls) {
		t.Fatalf("VerifyAudit = %+v (after %d calls)", res, calls)
	}

	// Every call left a record, failures included, and none holds the
	// plaintext.
	var recs []json.RawMessage
	in := kmsclient.ListAuditInput{Limit: 2}
	for {
		page, err := e.admin.ListAudit(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, page.Records...)
		if page.Next == "" {
			break
		}
		in.After = page.Next
	}
	if len(recs) < calls {
		t.Fatalf("%d audit records after %d calls", len(recs), calls)
	}
	var sawFailedDecrypt bool
	for _, r := range recs {
		var rec struct {
			Action     string `json:"action"`
			Result     string `json:"result"`
			ReasonCode string `json:"reason_code"`
			KeyID      string `json:"key_id"`
		}
		if err := json.Unmarshal(r, &rec); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(rec.Action, "Decrypt") && rec.Result == "error" && rec.ReasonCode == kmsclient.CodeInvalidCiphertext {
			sawFailedDecrypt = true
		}
	}
	if !sawFailedDecrypt {
		t.Fatalf("no audit record of the failed decrypt in %d records", len(recs))
	}
}

// TestE2EKeyReferences: management calls accept an alias and refuse empty
// references locally, without a request reaching kmsd.
func TestE2EKeyReferences(t *testing.T) {
	srv := kmstest.Start(t)
	c, err := kmsclient.New(kmsclient.Config{Endpoint: srv.URL, AccessKeyID: srv.AccessKeyID, SecretAccessKey: srv.SecretAccessKey, Region: srv.Region})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	k, err := c.CreateKey(ctx, kmsclient.CreateKeyInput{Description: "refs", Alias: "alias/refs"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.DescribeKey(ctx, "alias/refs")
	if err != nil || got.KeyID != k.KeyID {
		t.Fatalf("DescribeKey(alias) = %+v, %v; want key %s", got, err, k.KeyID)
	}
	if _, err := c.DisableKey(ctx, "alias/refs"); err != nil {
		t.Fatal(err)
	}
	if got, _ := c.DescribeKey(ctx, k.KeyID); got.KeyState != kmsclient.KeyStateDisabled {
		t.Fatalf("state after DisableKey(alias) = %s", got.KeyState)
	}
	if _, err := c.DescribeKey(ctx, "alias/missing"); !errors.Is(err, kmsclient.ErrNotFound) {
		t.Fatalf("DescribeKey(missing alias) err = %v, want ErrNotFound", err)
	}
	for name, call := range map[string]func() error{
		"DescribeKey empty":  func() error { _, err := c.DescribeKey(ctx, ""); return err },
		"DescribeKey alias/": func() error { _, err := c.DescribeKey(ctx, "alias/"); return err },
		"GetAlias empty":     func() error { _, err := c.GetAlias(ctx, ""); return err },
		"GetAlias alias/":    func() error { _, err := c.GetAlias(ctx, "alias/"); return err },
		"DeleteAlias empty":  func() error { return c.DeleteAlias(ctx, "") },
		"DescribeAccessKey":  func() error { _, err := c.DescribeAccessKey(ctx, ""); return err },
		"DeleteAccessKey":    func() error { return c.DeleteAccessKey(ctx, "") },
	} {
		if err := call(); !errors.Is(err, kmsclient.ErrInvalidArgument) {
			t.Errorf("%s: err = %v, want ErrInvalidArgument", name, err)
		}
	}
}
