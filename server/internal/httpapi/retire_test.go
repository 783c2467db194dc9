package httpapi_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/kmsgo/kmsgo/hsm/devhsm"
	"github.com/kmsgo/kmsgo/server/config"
	"github.com/kmsgo/kmsgo/server/dbtest"
	"github.com/kmsgo/kmsgo/server/kmstest"
	"github.com/kmsgo/kmsgo/starter/kmsapi"
)

// errorCode decodes an error answer.
func errorCode(t *testing.T, raw []byte) kmsapi.Error {
	t.Helper()
	var e kmsapi.ErrorResponse
	if err := json.Unmarshal(raw, &e); err != nil {
		t.Fatalf("error body %s: %v", raw, err)
	}
	return e.Error
}

// TestVersionRetirementHTTP: retirement refused (409 VersionInUse) while a
// version is in use, allowed with force and after renewal plus the quiet
// period; a disabled version refuses /v1/decrypt, batch items and
// re-encrypt with 409 KeyVersionDisabled until enabled; the primary cannot
// be disabled; the listing shows counts, last use and state; every change
// is audited.
func TestVersionRetirementHTTP(t *testing.T) {
	const quietPeriod = time.Second
	srv := kmstest.Start(t, kmstest.WithConfig(func(c *config.Config) {
		c.KMS.RetirementQuietPeriod = quietPeriod
		c.KMS.UsageFlushInterval = 100 * time.Millisecond
	}))
	var md kmsapi.KeyMetadata
	call(t, srv, "POST", "/v1/keys", map[string]any{"alias": "alias/retire"}, 201, &md)
	id := md.KeyID
	ec := map[string]string{"t": "orders"}
	var old kmsapi.EncryptResponse
	call(t, srv, "POST", "/v1/encrypt", map[string]any{"key_id": id, "plaintext": []byte("old data"), "encryption_context": ec}, 200, &old)
	path := func(v, action string) string { return "/v1/keys/" + id + "/versions/" + v + "/" + action }

	// The primary version: rotate first.
	st, raw := srv.Do(t, "POST", path("1", "disable"), map[string]any{"force": true})
	if e := errorCode(t, raw); st != http.StatusConflict || e.Code != kmsapi.CodeInvalidKeyState || !strings.Contains(e.Message, "rotate") {
		t.Fatalf("disable primary: %d %s", st, raw)
	}
	call(t, srv, "POST", "/v1/keys/"+id+"/rotate", nil, 200, &md)

	// In use: the application decrypted old data just now.
	var dec kmsapi.DecryptResponse
	call(t, srv, "POST", "/v1/decrypt", map[string]any{"ciphertext_blob": old.CiphertextBlob, "encryption_context": ec}, 200, &dec)
	st, raw = srv.Do(t, "POST", path("1", "disable"), nil)
	if e := errorCode(t, raw); st != http.StatusConflict || e.Code != kmsapi.CodeVersionInUse ||
		!strings.Contains(e.Message, "last used") || !strings.Contains(e.Message, "force") {
		t.Fatalf("disable in-use version: %d %s", st, raw)
	}

	// Renewal: re-encrypt the old data under the primary, then wait out
	// the quiet period (the renewal was the last use of version 1).
	var re kmsapi.ReEncryptResponse
	call(t, srv, "POST", "/v1/re-encrypt", map[string]any{"ciphertext_blob": old.CiphertextBlob, "source_encryption_context": ec, "destination_encryption_context": ec}, 200, &re)
	if re.SourceKeyVersion != 1 || re.KeyVersion != 2 {
		t.Fatalf("renewal %+v", re)
	}
	if st, raw := srv.Do(t, "POST", path("1", "disable"), nil); st != http.StatusConflict {
		t.Fatalf("disable right after renewal: %d %s", st, raw)
	}
	time.Sleep(quietPeriod + 100*time.Millisecond)
	var kv kmsapi.KeyVersion
	call(t, srv, "POST", path("1", "disable"), nil, 200, &kv)
	if kv.Version != 1 || kv.State != kmsapi.VersionDisabled || kv.DecryptCount != 2 || kv.LastUsedAt == nil {
		t.Fatalf("disabled %+v", kv)
	}

	// Old data fails on every path; renewed data decrypts.
	call(t, srv, "POST", "/v1/decrypt", map[string]any{"ciphertext_blob": re.CiphertextBlob, "encryption_context": ec}, 200, &dec)
	for _, tc := range []struct {
		path string
		body map[string]any
	}{
		{"/v1/decrypt", map[string]any{"ciphertext_blob": old.CiphertextBlob, "encryption_context": ec}},
		{"/v1/re-encrypt", map[string]any{"ciphertext_blob": old.CiphertextBlob, "source_encryption_context": ec}},
	} {
		st, raw := srv.Do(t, "POST", tc.path, tc.body)
		if e := errorCode(t, raw); st != http.StatusConflict || e.Code != kmsapi.CodeKeyVersionDisabled || !strings.Contains(e.Message, "version 1 of key "+id) {
			t.Errorf("%s under a disabled version: %d %s", tc.path, st, raw)
		}
	}
	var batch kmsapi.DecryptBatchResponse
	call(t, srv, "POST", "/v1/decrypt/batch", map[string]any{"items": []any{
		map[string]any{"ciphertext_blob": re.CiphertextBlob, "encryption_context": ec},
		map[string]any{"ciphertext_blob": old.CiphertextBlob, "encryption_context": ec},
	}}, 200, &batch)
	if string(batch.Results[0].Plaintext) != "old data" || batch.Results[1].Error == nil || batch.Results[1].Error.Code != kmsapi.CodeKeyVersionDisabled {
		t.Fatalf("batch %+v", batch)
	}

	// The listing: state, counts (flushed or not), last use.
	var vs kmsapi.VersionsResponse
	call(t, srv, "GET", "/v1/keys/"+id+"/versions", nil, 200, &vs)
	if len(vs.Versions) != 2 || vs.Versions[0].State != kmsapi.VersionDisabled || vs.Versions[0].DecryptCount != 2 ||
		vs.Versions[1].State != kmsapi.VersionEnabled || vs.Versions[1].DecryptCount != 2 || vs.Versions[1].LastUsedAt == nil {
		t.Fatalf("versions %+v", vs.Versions)
	}

	// Enable again; old data decrypts. Then force through a recent use.
	call(t, srv, "POST", path("1", "enable"), nil, 200, &kv)
	if kv.State != kmsapi.VersionEnabled {
		t.Fatalf("enabled %+v", kv)
	}
	call(t, srv, "POST", "/v1/decrypt", map[string]any{"ciphertext_blob": old.CiphertextBlob, "encryption_context": ec}, 200, &dec)
	if string(dec.Plaintext) != "old data" {
		t.Fatalf("decrypt after enable: %q", dec.Plaintext)
	}
	call(t, srv, "POST", "/v1/keys/alias%2Fretire/versions/1/disable", map[string]any{"force": true}, 200, &kv)
	if kv.State != kmsapi.VersionDisabled {
		t.Fatalf("forced %+v", kv)
	}

	// Bad requests.
	for _, tc := range []struct {
		path string
		body any
		st   int
		code string
	}{
		{path("3", "disable"), nil, 404, kmsapi.CodeNotFound},
		{path("0", "enable"), nil, 400, kmsapi.CodeValidation},
		{path("x", "disable"), nil, 400, kmsapi.CodeValidation},
		{path("1", "disable"), map[string]any{"force": "yes"}, 400, kmsapi.CodeValidation},
		{path("1", "disable"), map[string]any{"forse": true}, 400, kmsapi.CodeValidation},
	} {
		st, raw := srv.Do(t, "POST", tc.path, tc.body)
		if e := errorCode(t, raw); st != tc.st || e.Code != tc.code {
			t.Errorf("%s %v: %d %s, want %d %s", tc.path, tc.body, st, raw, tc.st, tc.code)
		}
	}

	// Audited, with the version.
	var disables, refused int
	for _, r := range auditRecords(t, srv) {
		if r["action"] != "kms:DisableKeyVersion" || r["key_id"] != id {
			continue
		}
		disables++
		if r["result"] == "error" && r["reason_code"] == kmsapi.CodeVersionInUse {
			refused++
			if v, _ := r["key_version"].(float64); v != 1 {
				t.Errorf("refused disable audited with version %v", r["key_version"])
			}
		}
	}
	if disables < 5 || refused != 2 {
		t.Fatalf("audited %d disable requests, %d refused as in use; want >= 5 and 2", disables, refused)
	}
}

// TestVersionRetirementPolicy: the actions are their own policy actions.
func TestVersionRetirementPolicy(t *testing.T) {
	srv := kmstest.Start(t)
	var md kmsapi.KeyMetadata
	call(t, srv, "POST", "/v1/keys", nil, 201, &md)
	call(t, srv, "POST", "/v1/keys/"+md.KeyID+"/rotate", nil, 200, &md)
	ak, secret := srv.CreateAccessKey(t, `{"statements":[{"effect":"Allow","actions":["kms:EnableKeyVersion","kms:ListKeyVersions"],"resources":["*"]}]}`)
	p := "/v1/keys/" + md.KeyID + "/versions/1/"
	if st, raw := srv.DoAs(t, ak, secret, "POST", p+"disable", map[string]any{"force": true}); st != http.StatusForbidden {
		t.Fatalf("disable without kms:DisableKeyVersion: %d %s", st, raw)
	}
	if st, raw := srv.DoAs(t, ak, secret, "POST", p+"enable", nil); st != http.StatusOK {
		t.Fatalf("enable with kms:EnableKeyVersion: %d %s", st, raw)
	}
}

// TestVersionRetirementReplicas: two replicas on one database. A decryption
// on replica A holds off retirement through replica B once A flushed
// (within kms.usage_flush_interval), B's listing shows A's counts, and a
// version disabled through B is refused by A within kms.metadata_ttl.
func TestVersionRetirementReplicas(t *testing.T) {
	const flush, ttl = 200 * time.Millisecond, 300 * time.Millisecond
	dbtest.ForEach(t, func(t *testing.T, db *gorm.DB) {
		dir := t.TempDir()
		backend, err := devhsm.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { backend.Close() })
		replica := func(name string) *kmstest.Server {
			return kmstest.Start(t, kmstest.WithDB(db), kmstest.WithHSM(backend), kmstest.WithDataDir(dir),
				kmstest.WithConfig(func(c *config.Config) {
					c.ReplicaID = name
					c.KMS.MetadataTTL = ttl
					c.KMS.UsageFlushInterval = flush
					c.KMS.RetirementQuietPeriod = time.Hour
				}))
		}
		a, b := replica("replica-a"), replica("replica-b")
		id := createKey(t, a, nil)
		blob := encrypt(t, a, id, []byte("old"), nil)
		call(t, a, "POST", "/v1/keys/"+id+"/rotate", nil, 200, nil)
		for range 3 {
			call(t, a, "POST", "/v1/decrypt", map[string]any{"ciphertext_blob": blob}, 200, nil)
		}
		time.Sleep(flush + 300*time.Millisecond) // A's background flush has run

		// B never decrypted: what it sees came through the database.
		var vs kmsapi.VersionsResponse
		call(t, b, "GET", "/v1/keys/"+id+"/versions", nil, 200, &vs)
		if vs.Versions[0].DecryptCount != 3 || vs.Versions[0].LastUsedAt == nil {
			t.Fatalf("B sees v1 %+v, want A's 3 uses", vs.Versions[0])
		}

		st, raw := b.Do(t, "POST", "/v1/keys/"+id+"/versions/1/disable", nil)
		if e := errorCode(t, raw); st != http.StatusConflict || e.Code != kmsapi.CodeVersionInUse {
			t.Fatalf("disable through B after uses on A: %d %s", st, raw)
		}

		call(t, b, "POST", "/v1/keys/"+id+"/versions/1/disable", map[string]any{"force": true}, 200, nil)
		disabled := time.Now()
		for {
			sent := time.Now()
			st, raw := a.Do(t, "POST", "/v1/decrypt", map[string]any{"ciphertext_blob": blob})
			if st == http.StatusConflict && errorCode(t, raw).Code == kmsapi.CodeKeyVersionDisabled {
				break
			}
			if st != http.StatusOK {
				t.Fatalf("replica A: %d %s", st, raw)
			}
			if late := sent.Sub(disabled); late > ttl+100*time.Millisecond {
				t.Fatalf("replica A still decrypts under v1 %v after B disabled it (bound %v)", late, ttl)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}
