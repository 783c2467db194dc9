package httpapi_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"github.com/kmsgo/kmsgo/starter/kmsapi"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kmsgo/kmsgo/server/internal/kmsdinternal"
	"github.com/kmsgo/kmsgo/server/kmstest"
)

// call does an admin request, checks the status and decodes into out.
func call(t *testing.T, srv *kmstest.Server, method, path string, body any, want int, out any) {
	t.Helper()
	st, raw := srv.Do(t, method, path, body)
	if st != want {
		t.Fatalf("%s %s: %d %s, want %d", method, path, st, raw, want)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: decode %s: %v", method, path, raw, err)
		}
	}
}

// TestEveryRouteWorks drives each /v1 route through its happy path.
func TestEveryRouteWorks(t *testing.T) {
	srv := kmstest.Start(t)
	seen := map[string]bool{}
	do := func(method, route, path string, body any, want int, out any) {
		t.Helper()
		seen[method+" "+route] = true
		call(t, srv, method, path, body, want, out)
	}

	var md kmsapi.KeyMetadata
	do("POST", "/v1/keys", "/v1/keys", map[string]any{"description": "orders", "tags": map[string]string{"team": "pay"}, "alias": "alias/orders"}, 201, &md)
	if md.KeyState != "Enabled" || md.KeySpec != "AES_256" || md.ProtectionLevel != "SOFTWARE" || md.Origin != "KMS" || md.Tags["team"] != "pay" {
		t.Fatalf("created %+v", md)
	}
	id := md.KeyID
	var hsmKey kmsapi.KeyMetadata
	do("POST", "/v1/keys", "/v1/keys", map[string]any{"protection_level": "HSM"}, 201, &hsmKey)

	var list kmsapi.ListKeysResponse
	do("GET", "/v1/keys", "/v1/keys?limit=1", nil, 200, &list)
	if len(list.Keys) != 1 || list.NextMarker == "" {
		t.Fatalf("page 1: %+v", list)
	}
	do("GET", "/v1/keys", "/v1/keys?tag=team:pay", nil, 200, &list)
	if len(list.Keys) != 1 || list.Keys[0].KeyID != id {
		t.Fatalf("by tag: %+v", list)
	}
	do("GET", "/v1/keys/:id", "/v1/keys/"+id, nil, 200, &md)
	if len(md.Aliases) != 1 || md.Aliases[0] != "alias/orders" {
		t.Fatalf("aliases %v", md.Aliases)
	}
	do("PATCH", "/v1/keys/:id", "/v1/keys/"+id, map[string]any{"description": "new"}, 200, &md)
	if md.Description != "new" {
		t.Fatalf("description %q", md.Description)
	}
	do("POST", "/v1/keys/:id/disable", "/v1/keys/"+id+"/disable", nil, 200, &md)
	if md.KeyState != "Disabled" {
		t.Fatalf("state %s", md.KeyState)
	}
	st, raw := srv.Do(t, "POST", "/v1/encrypt", map[string]any{"key_id": id, "plaintext": []byte("x")})
	if st != http.StatusConflict || !strings.Contains(string(raw), kmsapi.CodeInvalidKeyState) {
		t.Fatalf("encrypt under disabled key: %d %s", st, raw)
	}
	do("POST", "/v1/keys/:id/enable", "/v1/keys/"+id+"/enable", nil, 200, &md)
	do("POST", "/v1/keys/:id/rotate", "/v1/keys/"+id+"/rotate", nil, 200, &md)
	if md.PrimaryVersion != 2 {
		t.Fatalf("primary %d", md.PrimaryVersion)
	}
	var vs struct {
		Versions []kmsapi.KeyVersion `json:"versions"`
	}
	do("GET", "/v1/keys/:id/versions", "/v1/keys/"+id+"/versions", nil, 200, &vs)
	if len(vs.Versions) != 2 {
		t.Fatalf("versions %+v", vs)
	}
	var kv kmsapi.KeyVersion
	do("POST", "/v1/keys/:id/versions/:version/disable", "/v1/keys/"+id+"/versions/1/disable", map[string]any{"force": true}, 200, &kv)
	if kv.State != kmsapi.VersionDisabled {
		t.Fatalf("disabled version %+v", kv)
	}
	do("POST", "/v1/keys/:id/versions/:version/enable", "/v1/keys/"+id+"/versions/1/enable", nil, 200, &kv)
	if kv.State != kmsapi.VersionEnabled {
		t.Fatalf("enabled version %+v", kv)
	}
	var rp kmsapi.RotationPolicy
	do("PUT", "/v1/keys/:id/rotation-policy", "/v1/keys/"+id+"/rotation-policy", map[string]any{"enabled": true, "period_days": 90}, 200, &rp)
	if !rp.Enabled || rp.PeriodDays != 90 || rp.NextRotationAt == nil {
		t.Fatalf("rotation %+v", rp)
	}
	do("GET", "/v1/keys/:id/rotation-policy", "/v1/keys/"+id+"/rotation-policy", nil, 200, &rp)
	var tags struct {
		Tags map[string]string `json:"tags"`
	}
	do("POST", "/v1/keys/:id/tags", "/v1/keys/"+id+"/tags", map[string]any{"tags": map[string]string{"env": "prod"}}, 200, &tags)
	do("POST", "/v1/keys/:id/untag", "/v1/keys/"+id+"/untag", map[string]any{"tag_keys": []string{"team"}}, 200, &tags)
	tags.Tags = nil // Unmarshal merges into an existing map
	do("GET", "/v1/keys/:id/tags", "/v1/keys/"+id+"/tags", nil, 200, &tags)
	if len(tags.Tags) != 1 || tags.Tags["env"] != "prod" {
		t.Fatalf("tags %v", tags.Tags)
	}

	// Aliases.
	var al kmsapi.Alias
	do("POST", "/v1/aliases", "/v1/aliases", map[string]any{"alias_name": "alias/second", "key_id": id}, 201, &al)
	do("GET", "/v1/aliases/:name", "/v1/aliases/second", nil, 200, &al)
	if al.KeyID != id || al.AliasName != "alias/second" {
		t.Fatalf("alias %+v", al)
	}
	do("PUT", "/v1/aliases/:name", "/v1/aliases/second", map[string]any{"key_id": hsmKey.KeyID}, 200, &al)
	var als struct {
		Aliases []kmsapi.Alias `json:"aliases"`
	}
	do("GET", "/v1/aliases", "/v1/aliases?key_id="+hsmKey.KeyID, nil, 200, &als)
	if len(als.Aliases) != 1 || als.Aliases[0].AliasName != "alias/second" {
		t.Fatalf("aliases of hsm key %+v", als)
	}
	do("DELETE", "/v1/aliases/:name", "/v1/aliases/second", nil, 204, nil)

	// Crypto.
	ec := map[string]string{"tenant": "7"}
	var enc kmsapi.EncryptResponse
	do("POST", "/v1/encrypt", "/v1/encrypt", map[string]any{"key_id": "alias/orders", "plaintext": []byte("pay"), "encryption_context": ec}, 200, &enc)
	if enc.KeyID != id || enc.KeyVersion != 2 {
		t.Fatalf("encrypt %+v", enc)
	}
	var dec kmsapi.DecryptResponse
	do("POST", "/v1/decrypt", "/v1/decrypt", map[string]any{"ciphertext_blob": enc.CiphertextBlob, "encryption_context": ec, "key_id": "alias/orders"}, 200, &dec)
	if string(dec.Plaintext) != "pay" {
		t.Fatalf("decrypt %+v", dec)
	}
	var batch struct {
		Results []struct {
			Plaintext []byte `json:"plaintext"`
		} `json:"results"`
	}
	do("POST", "/v1/decrypt/batch", "/v1/decrypt/batch", map[string]any{"items": []any{map[string]any{"ciphertext_blob": enc.CiphertextBlob, "encryption_context": ec}}}, 200, &batch)
	if len(batch.Results) != 1 || string(batch.Results[0].Plaintext) != "pay" {
		t.Fatalf("batch %+v", batch)
	}
	var dk kmsapi.GenerateDataKeyResponse
	do("POST", "/v1/generate-data-key", "/v1/generate-data-key", map[string]any{"key_id": hsmKey.KeyID, "number_of_bytes": 32}, 200, &dk)
	if len(dk.Plaintext) != 32 || len(dk.CiphertextBlob) == 0 {
		t.Fatalf("data key %d %d", len(dk.Plaintext), len(dk.CiphertextBlob))
	}
	var dk2 map[string]any
	do("POST", "/v1/generate-data-key-without-plaintext", "/v1/generate-data-key-without-plaintext", map[string]any{"key_id": id, "key_spec": "AES_128"}, 200, &dk2)
	if _, ok := dk2["plaintext"]; ok || dk2["ciphertext_blob"] == "" {
		t.Fatalf("without plaintext: %v", dk2)
	}
	var re kmsapi.ReEncryptResponse
	do("POST", "/v1/re-encrypt", "/v1/re-encrypt", map[string]any{"ciphertext_blob": dk.CiphertextBlob, "destination_key_id": "alias/orders", "destination_encryption_context": ec}, 200, &re)
	if re.SourceKeyID != hsmKey.KeyID || re.KeyID != id {
		t.Fatalf("re-encrypt %+v", re)
	}
	do("POST", "/v1/decrypt", "/v1/decrypt", map[string]any{"ciphertext_blob": re.CiphertextBlob, "encryption_context": ec}, 200, &dec)
	if string(dec.Plaintext) != string(dk.Plaintext) {
		t.Fatal("re-encrypted data key differs")
	}
	var rnd struct {
		Plaintext []byte `json:"plaintext"`
	}
	do("POST", "/v1/random", "/v1/random", map[string]any{"number_of_bytes": 17}, 200, &rnd)
	if len(rnd.Plaintext) != 17 {
		t.Fatalf("random %d bytes", len(rnd.Plaintext))
	}

	// BYOK import.
	var ext kmsapi.KeyMetadata
	do("POST", "/v1/keys", "/v1/keys", map[string]any{"origin": "EXTERNAL"}, 201, &ext)
	if ext.KeyState != "PendingImport" {
		t.Fatalf("external key state %s", ext.KeyState)
	}
	var ip kmsapi.ImportParameters
	do("POST", "/v1/keys/:id/import-parameters", "/v1/keys/"+ext.KeyID+"/import-parameters", map[string]any{"wrapping_algorithm": "RSAES_OAEP_SHA_256"}, 200, &ip)
	pub, err := x509.ParsePKIXPublicKey(ip.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	material := make([]byte, 32)
	_, _ = rand.Read(material)
	wrapped, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, pub.(*rsa.PublicKey), material, nil)
	if err != nil {
		t.Fatal(err)
	}
	do("POST", "/v1/keys/:id/import", "/v1/keys/"+ext.KeyID+"/import", map[string]any{"import_token": ip.ImportToken, "encrypted_key_material": wrapped}, 200, &ext)
	if ext.KeyState != "Enabled" {
		t.Fatalf("imported key state %s", ext.KeyState)
	}

	// Deletion.
	do("POST", "/v1/keys/:id/schedule-deletion", "/v1/keys/"+hsmKey.KeyID+"/schedule-deletion", map[string]any{"pending_window_days": 7}, 200, &md)
	if md.KeyState != "PendingDeletion" || md.DeletionDate == nil {
		t.Fatalf("scheduled %+v", md)
	}
	do("POST", "/v1/keys/:id/cancel-deletion", "/v1/keys/"+hsmKey.KeyID+"/cancel-deletion", nil, 200, &md)
	if md.KeyState != "Disabled" {
		t.Fatalf("after cancel: %s", md.KeyState)
	}

	// Access keys.
	var ak kmsapi.AccessKey
	do("POST", "/v1/access-keys", "/v1/access-keys", map[string]any{"description": "app", "policy": map[string]any{"statements": []any{map[string]any{"effect": "Allow", "actions": []string{"kms:Decrypt"}, "resources": []string{"alias/orders"}}}}}, 201, &ak)
	if ak.SecretAccessKey == "" || ak.Status != "Enabled" {
		t.Fatalf("access key %+v", ak)
	}
	firstSecret := ak.SecretAccessKey
	var aks struct {
		AccessKeys []map[string]any `json:"access_keys"`
	}
	do("GET", "/v1/access-keys", "/v1/access-keys", nil, 200, &aks)
	for _, k := range aks.AccessKeys {
		if _, ok := k["secret_access_key"]; ok {
			t.Fatal("list shows a secret")
		}
	}
	if len(aks.AccessKeys) != 2 {
		t.Fatalf("access keys %d", len(aks.AccessKeys))
	}
	akID := ak.AccessKeyID
	ak = kmsapi.AccessKey{}
	do("GET", "/v1/access-keys/:id", "/v1/access-keys/"+akID, nil, 200, &ak)
	if ak.SecretAccessKey != "" {
		t.Fatal("describe shows the secret")
	}
	do("PUT", "/v1/access-keys/:id/policy", "/v1/access-keys/"+ak.AccessKeyID+"/policy", map[string]any{"policy": map[string]any{"statements": []any{map[string]any{"effect": "Allow", "actions": []string{"kms:Encrypt"}, "resources": []string{"*"}}}}}, 200, &ak)
	do("POST", "/v1/access-keys/:id/disable", "/v1/access-keys/"+ak.AccessKeyID+"/disable", nil, 200, &ak)
	if ak.Status != "Disabled" {
		t.Fatalf("status %s", ak.Status)
	}
	do("POST", "/v1/access-keys/:id/enable", "/v1/access-keys/"+ak.AccessKeyID+"/enable", nil, 200, &ak)
	ak = kmsapi.AccessKey{}
	do("POST", "/v1/access-keys/:id/rotate-secret", "/v1/access-keys/"+akID+"/rotate-secret", nil, 200, &ak)
	if ak.SecretAccessKey == "" || ak.SecretAccessKey == firstSecret {
		t.Fatal("rotate-secret returned no new secret")
	}
	do("DELETE", "/v1/access-keys/:id", "/v1/access-keys/"+akID, nil, 204, nil)

	// Audit.
	var recs struct {
		Records []map[string]any `json:"records"`
		Next    string           `json:"next"`
	}
	do("GET", "/v1/audit", "/v1/audit?limit=5", nil, 200, &recs)
	if len(recs.Records) != 5 || recs.Next == "" {
		t.Fatalf("audit page: %d records, next %q", len(recs.Records), recs.Next)
	}
	var ver kmsapi.AuditVerifyResult
	do("GET", "/v1/audit/verify", "/v1/audit/verify", nil, 200, &ver)
	if !ver.OK || ver.Checked < 40 || ver.FirstBroken != nil || len(ver.Heads) != 1 {
		t.Fatalf("verify %+v", ver)
	}
	var seg kmsapi.AuditSegment
	do("GET", "/v1/audit/export", "/v1/audit/export?replica="+ver.Heads[0].Replica+"&limit=10", nil, 200, &seg)
	if len(seg.Records) != 10 || seg.Seal.FirstSeq != 1 || seg.Seal.LastSeq != 10 || seg.Seal.Sig == "" {
		t.Fatalf("export: %d records, seal %+v", len(seg.Records), seg.Seal)
	}
	do("POST", "/v1/audit/exports", "/v1/audit/exports", seg.Seal, 204, nil)
	do("GET", "/v1/audit/export", "/v1/audit/export?replica="+ver.Heads[0].Replica+"&limit=10", nil, 200, &seg)
	if seg.Seal.FirstSeq != 11 {
		t.Fatalf("second export starts at %d, want after the exported 10", seg.Seal.FirstSeq)
	}

	// Jobs.
	var jl kmsapi.ListJobsResponse
	do("GET", "/v1/jobs", "/v1/jobs", nil, 200, &jl)
	if len(jl.Jobs) != 3 {
		t.Fatalf("jobs %+v", jl)
	}
	var jr kmsapi.JobRun
	do("POST", "/v1/jobs/:name/run", "/v1/jobs/destroy_due_keys/run", nil, 200, &jr)
	if jr.Job != "destroy_due_keys" || jr.Outcome != kmsapi.JobOutcomeOK {
		t.Fatalf("job run %+v", jr)
	}

	// POST / is the AWS KMS JSON protocol (an Extra route; its own tests
	// are in server/internal/awsapi).
	req, _ := http.NewRequest("POST", srv.URL+"/", strings.NewReader(`{"Limit":1}`))
	req.Header.Set("X-Amz-Target", "TrentService.ListKeys")
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	if err := srv.Sign(req, srv.AccessKeyID, srv.SecretAccessKey, []byte(`{"Limit":1}`), time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := srv.HTTP.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	awsBody, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(awsBody), `"Keys":[{`) {
		t.Fatalf("AWS ListKeys: %d %s", resp.StatusCode, awsBody)
	}
	seen["POST /"] = true

	for _, r := range kmsdinternal.Of(srv.App).Handler.Routes() {
		if !r.Public && !seen[r.Method+" "+r.Path] {
			t.Errorf("route not exercised: %s %s", r.Method, r.Path)
		}
	}
}
