package httpapi_test

import (
	"github.com/kmsgo/kmsgo/starter/kmsapi"
	"net/http"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/kmsgo/kmsgo/hsm/devhsm"
	"github.com/kmsgo/kmsgo/server/config"
	"github.com/kmsgo/kmsgo/server/dbtest"
	"github.com/kmsgo/kmsgo/server/kmstest"
)

// TestReplicasShareKeyState runs two kmsd replicas on one database and
// proves that a key or access key disabled through replica A is refused by
// replica B within the documented bound (kms.metadata_ttl for keys,
// auth.cache_ttl for access keys).
func TestReplicasShareKeyState(t *testing.T) {
	const bound = 300 * time.Millisecond
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
					c.KMS.MetadataTTL = bound
					c.Auth.CacheTTL = bound
				}))
		}
		a, b := replica("replica-a"), replica("replica-b")

		id := createKey(t, a, nil)
		blob := encrypt(t, b, id, []byte("shared"), nil) // B serves A's key (and caches it)
		call(t, b, "POST", "/v1/decrypt", map[string]any{"ciphertext_blob": blob}, 200, nil)

		call(t, a, "POST", "/v1/keys/"+id+"/disable", nil, 200, nil)
		disabled := time.Now()
		for {
			sent := time.Now()
			st, body := b.Do(t, "POST", "/v1/encrypt", map[string]any{"key_id": id, "plaintext": []byte("x")})
			if st == http.StatusConflict {
				break
			}
			if st != http.StatusOK {
				t.Fatalf("replica B: %d %s", st, body)
			}
			// A request sent after the bound (plus slack for the
			// replica's own cache load) must have been refused.
			if late := sent.Sub(disabled); late > bound+100*time.Millisecond {
				t.Fatalf("replica B still encrypts %v after the key was disabled on A (bound %v)", late, bound)
			}
			time.Sleep(20 * time.Millisecond)
		}
		if st, body := b.Do(t, "POST", "/v1/decrypt", map[string]any{"ciphertext_blob": blob}); st != http.StatusConflict {
			t.Fatalf("replica B decrypts under a disabled key %v after disabling: %d %s", time.Since(disabled), st, body)
		}

		// An access key disabled through A stops working on B.
		ak, sk := a.CreateAccessKey(t, `{"statements":[{"effect":"Allow","actions":["kms:ListKeys"],"resources":["*"]}]}`)
		if st, body := b.DoAs(t, ak, sk, "GET", "/v1/keys", nil); st != 200 {
			t.Fatalf("new access key on B: %d %s", st, body)
		}
		call(t, a, "POST", "/v1/access-keys/"+ak+"/disable", nil, 200, nil)
		time.Sleep(bound + 50*time.Millisecond)
		if st, _ := b.DoAs(t, ak, sk, "GET", "/v1/keys", nil); st != http.StatusUnauthorized {
			t.Fatalf("disabled access key still accepted by B: %d", st)
		}

		// Both replicas' audit chains verify.
		var ver kmsapi.AuditVerifyResult
		call(t, b, "GET", "/v1/audit/verify", nil, 200, &ver)
		if !ver.OK || ver.Checked < 8 {
			t.Fatalf("verify: %+v", ver)
		}
	})
}
