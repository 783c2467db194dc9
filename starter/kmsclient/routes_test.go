package kmsclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

const keyMetaJSON = `{"key_id":"9f1c","description":"orders","key_spec":"AES_256","protection_level":"HSM",
 "origin":"KMS","key_state":"Enabled","creation_date":"2026-11-23T10:00:00Z","deletion_date":null,
 "primary_version":3,"aliases":["alias/orders"],"tags":{"team":"pay"},
 "rotation":{"enabled":true,"period_days":90,"next_rotation_at":"2027-02-21T10:00:00Z"}}`

const accessKeyJSON = `{"access_key_id":"AK1","secret_access_key":"SK1","description":"app","status":"Enabled",
 "policy":{"statements":[{"effect":"Allow","actions":["kms:Decrypt"],"resources":["alias/orders-*"]}]},
 "creation_date":"2026-11-23T10:00:00Z"}`

func checkKeyMeta(t *testing.T, v any) {
	t.Helper()
	m := v.(*KeyMetadata)
	next := time.Date(2027, 2, 21, 10, 0, 0, 0, time.UTC)
	want := KeyMetadata{KeyID: "9f1c", Description: "orders", KeySpec: KeySpecAES256, ProtectionLevel: ProtectionHSM,
		Origin: OriginKMS, KeyState: KeyStateEnabled, CreationDate: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC),
		PrimaryVersion: 3, Aliases: []string{"alias/orders"}, Tags: map[string]string{"team": "pay"},
		Rotation: RotationPolicy{Enabled: true, PeriodDays: 90, NextRotationAt: &next}}
	if !reflect.DeepEqual(*m, want) {
		t.Fatalf("got %+v\nwant %+v", *m, want)
	}
}

func checkAccessKey(t *testing.T, v any) {
	t.Helper()
	a := v.(*AccessKey)
	if a.AccessKeyID != "AK1" || a.SecretAccessKey != "SK1" || a.Status != "Enabled" ||
		a.Policy.Statements[0].Resources[0] != "alias/orders-*" || a.CreationDate.IsZero() {
		t.Fatalf("got %+v", *a)
	}
}

// TestRoutes checks every operation's method, path, query and JSON body
// against API.md, and the decoding of its documented answer.
func TestRoutes(t *testing.T) {
	ctx := context.Background()
	pol := Policy{Statements: []Statement{{Effect: "Allow", Actions: []string{"kms:Decrypt"}, Resources: []string{"alias/orders-*"}}}}
	tests := []struct {
		name     string
		call     func(c *Client) (any, error)
		method   string
		path     string
		query    string
		body     string // expected JSON ("" = no body)
		status   int
		response string
		check    func(t *testing.T, v any)
	}{
		{"Encrypt", func(c *Client) (any, error) {
			return c.Encrypt(ctx, "alias/orders", []byte("hello"), map[string]string{"order": "42"})
		}, "POST", "/v1/encrypt", "", `{"key_id":"alias/orders","plaintext":"aGVsbG8=","encryption_context":{"order":"42"}}`,
			200, `{"key_id":"9f1c","key_version":2,"ciphertext_blob":"AQID"}`,
			func(t *testing.T, v any) {
				if r := v.(*EncryptResult); r.KeyID != "9f1c" || r.KeyVersion != 2 || !bytes.Equal(r.CiphertextBlob, []byte{1, 2, 3}) {
					t.Fatalf("%+v", r)
				}
			}},
		{"Decrypt", func(c *Client) (any, error) {
			return c.Decrypt(ctx, []byte{1, 2, 3, 4}, nil)
		}, "POST", "/v1/decrypt", "", `{"ciphertext_blob":"AQIDBA=="}`,
			200, `{"key_id":"9f1c","key_version":1,"plaintext":"aGk="}`,
			func(t *testing.T, v any) {
				if r := v.(*DecryptResult); r.KeyID != "9f1c" || r.KeyVersion != 1 || string(r.Plaintext) != "hi" {
					t.Fatalf("%+v", r)
				}
			}},
		{"DecryptWithKeyID", func(c *Client) (any, error) {
			return c.DecryptWithKeyID(ctx, "alias/x", []byte{1}, map[string]string{"a": "b"})
		}, "POST", "/v1/decrypt", "", `{"ciphertext_blob":"AQ==","encryption_context":{"a":"b"},"key_id":"alias/x"}`,
			200, `{"key_id":"9f1c","key_version":1,"plaintext":""}`,
			func(t *testing.T, v any) {
				if r := v.(*DecryptResult); r.Plaintext == nil || len(r.Plaintext) != 0 {
					t.Fatalf("empty plaintext: %#v", r.Plaintext)
				}
			}},
		{"GenerateDataKey", func(c *Client) (any, error) {
			return c.GenerateDataKey(ctx, "alias/orders", map[string]string{"t": "users"})
		}, "POST", "/v1/generate-data-key", "", `{"key_id":"alias/orders","key_spec":"AES_256","encryption_context":{"t":"users"}}`,
			200, `{"key_id":"9f1c","key_version":4,"plaintext":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","ciphertext_blob":"Cg=="}`,
			func(t *testing.T, v any) {
				if r := v.(*DataKey); r.KeyVersion != 4 || len(r.Plaintext) != 32 || !bytes.Equal(r.CiphertextBlob, []byte{10}) {
					t.Fatalf("%+v", r)
				}
			}},
		{"GenerateDataKeyWithoutPlaintext", func(c *Client) (any, error) {
			return c.GenerateDataKeyWithoutPlaintext(ctx, "k", nil)
		}, "POST", "/v1/generate-data-key-without-plaintext", "", `{"key_id":"k","key_spec":"AES_256"}`,
			200, `{"key_id":"9f1c","key_version":4,"ciphertext_blob":"Cg=="}`,
			func(t *testing.T, v any) {
				if r := v.(*DataKey); r.Plaintext != nil || !bytes.Equal(r.CiphertextBlob, []byte{10}) {
					t.Fatalf("%+v", r)
				}
			}},
		{"ReEncrypt", func(c *Client) (any, error) {
			return c.ReEncrypt(ctx, []byte{1}, map[string]string{"s": "1"}, "alias/new", map[string]string{"d": "2"})
		}, "POST", "/v1/re-encrypt", "", `{"ciphertext_blob":"AQ==","source_encryption_context":{"s":"1"},"destination_key_id":"alias/new","destination_encryption_context":{"d":"2"}}`,
			200, `{"source_key_id":"old","source_key_version":1,"key_id":"new","key_version":2,"ciphertext_blob":"Ag=="}`,
			func(t *testing.T, v any) {
				want := ReEncryptResult{SourceKeyID: "old", SourceKeyVersion: 1, KeyID: "new", KeyVersion: 2, CiphertextBlob: []byte{2}}
				if !reflect.DeepEqual(*v.(*ReEncryptResult), want) {
					t.Fatalf("%+v", v)
				}
			}},
		{"GenerateRandom", func(c *Client) (any, error) { return c.GenerateRandom(ctx, 4) },
			"POST", "/v1/random", "", `{"number_of_bytes":4}`, 200, `{"plaintext":"AQIDBA=="}`,
			func(t *testing.T, v any) {
				if !bytes.Equal(v.([]byte), []byte{1, 2, 3, 4}) {
					t.Fatalf("%x", v)
				}
			}},
		{"CreateKey", func(c *Client) (any, error) {
			return c.CreateKey(ctx, CreateKeyInput{Description: "orders", ProtectionLevel: ProtectionHSM, Tags: map[string]string{"team": "pay"}, Alias: "alias/orders"})
		}, "POST", "/v1/keys", "", `{"description":"orders","protection_level":"HSM","tags":{"team":"pay"},"alias":"alias/orders"}`,
			201, keyMetaJSON, checkKeyMeta},
		{"ListKeys", func(c *Client) (any, error) {
			return c.ListKeys(ctx, ListKeysInput{Limit: 10, Marker: "m1", State: "Enabled", Alias: "alias/o", Tag: "team:pay"})
		}, "GET", "/v1/keys", "alias=alias%2Fo&limit=10&marker=m1&state=Enabled&tag=team%3Apay", "",
			200, `{"keys":[` + keyMetaJSON + `],"next_marker":"m2"}`,
			func(t *testing.T, v any) {
				o := v.(*ListKeysOutput)
				if len(o.Keys) != 1 || o.NextMarker != "m2" {
					t.Fatalf("%+v", o)
				}
				checkKeyMeta(t, &o.Keys[0])
			}},
		{"ListKeys no filters", func(c *Client) (any, error) { return c.ListKeys(ctx, ListKeysInput{}) },
			"GET", "/v1/keys", "", "", 200, `{"keys":[],"next_marker":""}`, nil},
		{"DescribeKey escapes id", func(c *Client) (any, error) { return c.DescribeKey(ctx, "a b?c") },
			"GET", "/v1/keys/a%20b%3Fc", "", "", 200, keyMetaJSON, checkKeyMeta},
		{"UpdateKeyDescription", func(c *Client) (any, error) { return c.UpdateKeyDescription(ctx, "9f1c", "new") },
			"PATCH", "/v1/keys/9f1c", "", `{"description":"new"}`, 200, keyMetaJSON, checkKeyMeta},
		{"EnableKey", func(c *Client) (any, error) { return c.EnableKey(ctx, "9f1c") },
			"POST", "/v1/keys/9f1c/enable", "", "", 200, keyMetaJSON, checkKeyMeta},
		{"DisableKey", func(c *Client) (any, error) { return c.DisableKey(ctx, "9f1c") },
			"POST", "/v1/keys/9f1c/disable", "", "", 200, keyMetaJSON, checkKeyMeta},
		{"RotateKey", func(c *Client) (any, error) { return c.RotateKey(ctx, "9f1c") },
			"POST", "/v1/keys/9f1c/rotate", "", "", 200, keyMetaJSON, checkKeyMeta},
		{"ScheduleKeyDeletion", func(c *Client) (any, error) { return c.ScheduleKeyDeletion(ctx, "9f1c", 7) },
			"POST", "/v1/keys/9f1c/schedule-deletion", "", `{"pending_window_days":7}`, 200, keyMetaJSON, checkKeyMeta},
		{"ScheduleKeyDeletion default", func(c *Client) (any, error) { return c.ScheduleKeyDeletion(ctx, "9f1c", 0) },
			"POST", "/v1/keys/9f1c/schedule-deletion", "", `{}`, 200, keyMetaJSON, checkKeyMeta},
		{"CancelKeyDeletion", func(c *Client) (any, error) { return c.CancelKeyDeletion(ctx, "9f1c") },
			"POST", "/v1/keys/9f1c/cancel-deletion", "", "", 200, keyMetaJSON, checkKeyMeta},
		{"GetRotationPolicy", func(c *Client) (any, error) { return c.GetRotationPolicy(ctx, "9f1c") },
			"GET", "/v1/keys/9f1c/rotation-policy", "", "", 200, `{"enabled":false,"period_days":365,"next_rotation_at":null}`,
			func(t *testing.T, v any) {
				if p := v.(*RotationPolicy); p.Enabled || p.PeriodDays != 365 || p.NextRotationAt != nil {
					t.Fatalf("%+v", p)
				}
			}},
		{"SetRotationPolicy", func(c *Client) (any, error) { return c.SetRotationPolicy(ctx, "9f1c", true, 90) },
			"PUT", "/v1/keys/9f1c/rotation-policy", "", `{"enabled":true,"period_days":90}`, 200,
			`{"enabled":true,"period_days":90,"next_rotation_at":"2027-02-21T10:00:00Z"}`,
			func(t *testing.T, v any) {
				if p := v.(*RotationPolicy); !p.Enabled || p.NextRotationAt == nil {
					t.Fatalf("%+v", p)
				}
			}},
		{"SetRotationPolicy off", func(c *Client) (any, error) { return c.SetRotationPolicy(ctx, "9f1c", false, 0) },
			"PUT", "/v1/keys/9f1c/rotation-policy", "", `{"enabled":false}`, 200, `{"enabled":false,"period_days":365}`, nil},
		{"ListKeyVersions", func(c *Client) (any, error) { return c.ListKeyVersions(ctx, "9f1c") },
			"GET", "/v1/keys/9f1c/versions", "", "", 200,
			`{"versions":[{"version":1,"state":"Enabled","primary":false,"creation_date":"2026-01-01T00:00:00Z"},{"version":2,"state":"Enabled","primary":true,"creation_date":"2026-06-01T00:00:00Z"}]}`,
			func(t *testing.T, v any) {
				vs := v.([]KeyVersion)
				if len(vs) != 2 || vs[1].Version != 2 || !vs[1].Primary || vs[0].CreationDate.Year() != 2026 {
					t.Fatalf("%+v", vs)
				}
			}},
		{"ListTags", func(c *Client) (any, error) { return c.ListTags(ctx, "9f1c") },
			"GET", "/v1/keys/9f1c/tags", "", "", 200, `{"tags":{}}`,
			func(t *testing.T, v any) {
				if m := v.(map[string]string); m == nil || len(m) != 0 {
					t.Fatalf("%v", m)
				}
			}},
		{"TagKey", func(c *Client) (any, error) { return c.TagKey(ctx, "9f1c", map[string]string{"env": "prod"}) },
			"POST", "/v1/keys/9f1c/tags", "", `{"tags":{"env":"prod"}}`, 200, `{"tags":{"env":"prod","team":"pay"}}`,
			func(t *testing.T, v any) {
				if m := v.(map[string]string); m["env"] != "prod" || m["team"] != "pay" {
					t.Fatalf("%v", m)
				}
			}},
		{"UntagKey", func(c *Client) (any, error) { return c.UntagKey(ctx, "9f1c", []string{"env"}) },
			"POST", "/v1/keys/9f1c/untag", "", `{"tag_keys":["env"]}`, 200, `{"tags":{"team":"pay"}}`, nil},
		{"GetParametersForImport", func(c *Client) (any, error) { return c.GetParametersForImport(ctx, "9f1c", "") },
			"POST", "/v1/keys/9f1c/import-parameters", "", `{"wrapping_algorithm":"RSAES_OAEP_SHA_256"}`, 200,
			`{"import_token":"dG9r","public_key":"MIIB","valid_to":"2026-11-24T10:00:00Z"}`,
			func(t *testing.T, v any) {
				p := v.(*ImportParameters)
				if string(p.ImportToken) != "tok" || !bytes.Equal(p.PublicKey, []byte{0x30, 0x82, 0x01}) || p.ValidTo.Day() != 24 {
					t.Fatalf("%+v", p)
				}
			}},
		{"ImportKeyMaterial", func(c *Client) (any, error) { return c.ImportKeyMaterial(ctx, "9f1c", []byte("tok"), []byte{0xff}) },
			"POST", "/v1/keys/9f1c/import", "", `{"import_token":"dG9r","encrypted_key_material":"/w=="}`, 200, keyMetaJSON, checkKeyMeta},
		{"ListAliases", func(c *Client) (any, error) { return c.ListAliases(ctx, "9f1c") },
			"GET", "/v1/aliases", "key_id=9f1c", "", 200, `{"aliases":[{"alias_name":"alias/orders","key_id":"9f1c"}]}`,
			func(t *testing.T, v any) {
				if a := v.([]Alias); len(a) != 1 || a[0] != (Alias{AliasName: "alias/orders", KeyID: "9f1c"}) {
					t.Fatalf("%+v", a)
				}
			}},
		{"GetAlias strips prefix", func(c *Client) (any, error) { return c.GetAlias(ctx, "alias/orders") },
			"GET", "/v1/aliases/orders", "", "", 200, `{"alias_name":"alias/orders","key_id":"9f1c"}`,
			func(t *testing.T, v any) {
				if a := v.(*Alias); a.KeyID != "9f1c" {
					t.Fatalf("%+v", a)
				}
			}},
		{"CreateAlias adds prefix", func(c *Client) (any, error) { return c.CreateAlias(ctx, "orders", "9f1c") },
			"POST", "/v1/aliases", "", `{"alias_name":"alias/orders","key_id":"9f1c"}`, 201, `{"alias_name":"alias/orders","key_id":"9f1c"}`, nil},
		{"UpdateAlias", func(c *Client) (any, error) { return c.UpdateAlias(ctx, "orders", "abcd") },
			"PUT", "/v1/aliases/orders", "", `{"key_id":"abcd"}`, 200, `{"alias_name":"alias/orders","key_id":"abcd"}`, nil},
		{"DeleteAlias", func(c *Client) (any, error) { return nil, c.DeleteAlias(ctx, "alias/orders") },
			"DELETE", "/v1/aliases/orders", "", "", 204, "", nil},
		{"CreateAccessKey", func(c *Client) (any, error) { return c.CreateAccessKey(ctx, "app", pol) },
			"POST", "/v1/access-keys", "", `{"description":"app","policy":{"statements":[{"effect":"Allow","actions":["kms:Decrypt"],"resources":["alias/orders-*"]}]}}`,
			201, accessKeyJSON, checkAccessKey},
		{"ListAccessKeys", func(c *Client) (any, error) { return c.ListAccessKeys(ctx) },
			"GET", "/v1/access-keys", "", "", 200, `{"access_keys":[` + accessKeyJSON + `]}`,
			func(t *testing.T, v any) { checkAccessKey(t, &v.([]AccessKey)[0]) }},
		{"DescribeAccessKey", func(c *Client) (any, error) { return c.DescribeAccessKey(ctx, "AK1") },
			"GET", "/v1/access-keys/AK1", "", "", 200, accessKeyJSON, checkAccessKey},
		{"UpdateAccessKeyPolicy", func(c *Client) (any, error) { return c.UpdateAccessKeyPolicy(ctx, "AK1", AdminPolicy()) },
			"PUT", "/v1/access-keys/AK1/policy", "", `{"policy":{"statements":[{"effect":"Allow","actions":["*"],"resources":["*"]}]}}`,
			200, accessKeyJSON, checkAccessKey},
		{"DisableAccessKey", func(c *Client) (any, error) { return c.DisableAccessKey(ctx, "AK1") },
			"POST", "/v1/access-keys/AK1/disable", "", "", 200, accessKeyJSON, checkAccessKey},
		{"EnableAccessKey", func(c *Client) (any, error) { return c.EnableAccessKey(ctx, "AK1") },
			"POST", "/v1/access-keys/AK1/enable", "", "", 200, accessKeyJSON, checkAccessKey},
		{"RotateAccessKeySecret", func(c *Client) (any, error) { return c.RotateAccessKeySecret(ctx, "AK1") },
			"POST", "/v1/access-keys/AK1/rotate-secret", "", "", 200, accessKeyJSON, checkAccessKey},
		{"DeleteAccessKey", func(c *Client) (any, error) { return nil, c.DeleteAccessKey(ctx, "AK1") },
			"DELETE", "/v1/access-keys/AK1", "", "", 204, "", nil},
		{"ListAudit", func(c *Client) (any, error) { return c.ListAudit(ctx, ListAuditInput{Limit: 2, After: "17"}) },
			"GET", "/v1/audit", "after=17&limit=2", "", 200, `{"records":[{"seq":18,"action":"kms:Decrypt"},{"seq":19}],"next":19}`,
			func(t *testing.T, v any) {
				p := v.(*AuditPage)
				if len(p.Records) != 2 || p.Next != "19" || !strings.Contains(string(p.Records[0]), `"kms:Decrypt"`) {
					t.Fatalf("%+v", p)
				}
			}},
		{"ListAudit last page", func(c *Client) (any, error) { return c.ListAudit(ctx, ListAuditInput{}) },
			"GET", "/v1/audit", "", "", 200, `{"records":[],"next":null}`,
			func(t *testing.T, v any) {
				if p := v.(*AuditPage); p.Next != "" {
					t.Fatalf("%+v", p)
				}
			}},
		{"VerifyAudit", func(c *Client) (any, error) { return c.VerifyAudit(ctx) },
			"GET", "/v1/audit/verify", "", "", 200, `{"ok":false,"checked":120,"first_broken":{"replica":"r2","seq":77,"reason":"hash mismatch"}}`,
			func(t *testing.T, v any) {
				r := v.(*AuditVerifyResult)
				if r.OK || r.Checked != 120 || r.FirstBroken == nil || *r.FirstBroken != (AuditBreak{"r2", 77, "hash mismatch"}) {
					t.Fatalf("%+v", r)
				}
			}},
		{"ListJobs", func(c *Client) (any, error) { return c.ListJobs(ctx) },
			"GET", "/v1/jobs", "", "", 200, `{"jobs":[{"name":"rotate_due_keys","schedule":"@every 5m","running":true,
 "lease_holder":"kmsd-a/1/ff","lease_until":"2026-12-02T03:00:30Z","next_run":"2026-12-02T03:05:00Z",
 "last_start":"2026-12-02T02:55:00Z","last_end":"2026-12-02T02:55:01Z","last_outcome":"error","last_error":"hsm down",
 "last_items":2,"runs":7,"last_run_holder":"kmsd-b/9/aa"}]}`,
			func(t *testing.T, v any) {
				js := v.([]JobInfo)
				until := time.Date(2026, 12, 2, 3, 0, 30, 0, time.UTC)
				if len(js) != 1 || js[0].Name != "rotate_due_keys" || !js[0].Running || js[0].LeaseHolder != "kmsd-a/1/ff" ||
					!js[0].LeaseUntil.Equal(until) || js[0].LastOutcome != JobOutcomeError || js[0].LastError != "hsm down" ||
					js[0].LastItems != 2 || js[0].Runs != 7 || js[0].NextRun == nil || js[0].LastEnd == nil {
					t.Fatalf("%+v", js)
				}
			}},
		{"RunJob", func(c *Client) (any, error) { return c.RunJob(ctx, "rotate_due_keys") },
			"POST", "/v1/jobs/rotate_due_keys/run", "", "", 200, `{"job":"rotate_due_keys","started":"2026-12-02T02:55:00Z",
 "duration_ms":12,"outcome":"ok","items":1,"changes":[{"key_id":"9f1c","field":"primary_version","old":"1","new":"2"}]}`,
			func(t *testing.T, v any) {
				r := v.(*JobRun)
				if r.Job != "rotate_due_keys" || r.Outcome != JobOutcomeOK || r.Items != 1 || r.DurationMS != 12 ||
					len(r.Changes) != 1 || r.Changes[0] != (JobChange{KeyID: "9f1c", Field: "primary_version", Old: "1", New: "2"}) {
					t.Fatalf("%+v", r)
				}
			}},
		{"VerifyAudit ok", func(c *Client) (any, error) { return c.VerifyAudit(ctx) },
			"GET", "/v1/audit/verify", "", "", 200, `{"ok":true,"checked":5,"first_broken":null}`,
			func(t *testing.T, v any) {
				if r := v.(*AuditVerifyResult); !r.OK || r.FirstBroken != nil {
					t.Fatalf("%+v", r)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDouble(t, func(w http.ResponseWriter, r *http.Request, body []byte, _ int) {
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.response))
			})
			v, err := tt.call(d.client(t, nil))
			if err != nil {
				t.Fatal(err)
			}
			reqs := d.requests()
			if len(reqs) != 1 {
				t.Fatalf("%d requests", len(reqs))
			}
			r := reqs[0]
			if r.Method != tt.method || r.Path != tt.path || r.RawQuery != tt.query {
				t.Fatalf("sent %s %s?%s, want %s %s?%s", r.Method, r.Path, r.RawQuery, tt.method, tt.path, tt.query)
			}
			if tt.body == "" {
				if len(r.Body) != 0 {
					t.Fatalf("unexpected body %s", r.Body)
				}
			} else {
				var got, want any
				if err := json.Unmarshal(r.Body, &got); err != nil {
					t.Fatalf("body %s: %v", r.Body, err)
				}
				if err := json.Unmarshal([]byte(tt.body), &want); err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("body %s, want %s", r.Body, tt.body)
				}
				if r.Header.Get("Content-Type") != "application/json" {
					t.Fatalf("Content-Type %q", r.Header.Get("Content-Type"))
				}
			}
			if tt.check != nil {
				tt.check(t, v)
			}
		})
	}
}

func TestResponseValidation(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name     string
		response string
		call     func(c *Client) error
	}{
		{"data key not 32 bytes", `{"key_id":"k","plaintext":"AQID","ciphertext_blob":"AQ=="}`,
			func(c *Client) error { _, err := c.GenerateDataKey(ctx, "k", nil); return err }},
		{"data key without blob", `{"key_id":"k","plaintext":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}`,
			func(c *Client) error { _, err := c.GenerateDataKey(ctx, "k", nil); return err }},
		{"encrypt without blob", `{"key_id":"k"}`,
			func(c *Client) error { _, err := c.Encrypt(ctx, "k", nil, nil); return err }},
		{"random wrong length", `{"plaintext":"AQ=="}`,
			func(c *Client) error { _, err := c.GenerateRandom(ctx, 2); return err }},
		{"bad base64", `{"key_id":"k","ciphertext_blob":"***"}`,
			func(c *Client) error { _, err := c.Encrypt(ctx, "k", nil, nil); return err }},
		{"batch count mismatch", `{"results":[]}`,
			func(c *Client) error {
				_, err := c.DecryptBatch(ctx, []DecryptItem{{CiphertextBlob: []byte{1}}})
				return err
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDouble(t, func(w http.ResponseWriter, r *http.Request, _ []byte, _ int) {
				_, _ = w.Write([]byte(tt.response))
			})
			if err := tt.call(d.client(t, nil)); !errors.Is(err, ErrMalformedResponse) {
				t.Fatalf("err = %v", err)
			}
		})
	}
	c, _ := New(Config{Endpoint: "http://127.0.0.1:1", AccessKeyID: "a", SecretAccessKey: "b"})
	for _, n := range []int{0, -1, 1025} {
		if _, err := c.GenerateRandom(ctx, n); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("GenerateRandom(%d): %v", n, err)
		}
	}
}

func TestDecryptBatch(t *testing.T) {
	// The double "decrypts" by echoing the blob, fails blobs starting with
	// 0xEE with InvalidCiphertext, and records batch sizes.
	var mu sync.Mutex
	var sizes []int
	batchSizes := func() []int { mu.Lock(); defer mu.Unlock(); return slices.Clone(sizes) }
	d := newDouble(t, func(w http.ResponseWriter, r *http.Request, body []byte, _ int) {
		var in struct {
			Items []struct {
				CiphertextBlob    []byte            `json:"ciphertext_blob"`
				EncryptionContext map[string]string `json:"encryption_context"`
			} `json:"items"`
		}
		if err := json.Unmarshal(body, &in); err != nil {
			writeError(w, 400, CodeValidation, err.Error())
			return
		}
		mu.Lock()
		sizes = append(sizes, len(in.Items))
		mu.Unlock()
		var results []any
		for _, it := range in.Items {
			if it.CiphertextBlob[0] == 0xEE {
				results = append(results, map[string]any{"error": map[string]string{"code": CodeInvalidCiphertext, "message": "bad"}})
				continue
			}
			results = append(results, map[string]any{"key_id": it.EncryptionContext["k"], "key_version": 1, "plaintext": it.CiphertextBlob})
		}
		writeJSON(w, 200, map[string]any{"results": results})
	})
	c := d.client(t, nil)

	items := make([]DecryptItem, 250)
	for i := range items {
		items[i] = DecryptItem{CiphertextBlob: []byte{1, byte(i), byte(i >> 8)}, EncryptionContext: map[string]string{"k": "key"}}
	}
	items[120].CiphertextBlob = []byte{0xEE}
	res, err := c.DecryptBatch(context.Background(), items)
	if err != nil {
		t.Fatal(err)
	}
	if got := batchSizes(); !reflect.DeepEqual(got, []int{100, 100, 50}) {
		t.Fatalf("batch sizes %v", got)
	}
	if len(res) != 250 {
		t.Fatalf("%d results", len(res))
	}
	for i, r := range res {
		if i == 120 {
			var ae *APIError
			if !errors.As(r.Err, &ae) || !errors.Is(r.Err, ErrInvalidCiphertext) || ae.StatusCode != 400 || r.Plaintext != nil {
				t.Fatalf("item 120: %+v", r)
			}
			continue
		}
		if r.Err != nil || r.KeyID != "key" || !bytes.Equal(r.Plaintext, items[i].CiphertextBlob) {
			t.Fatalf("item %d: %+v", i, r)
		}
	}

	// Large items are split to keep each request under the 1 MiB limit.
	mu.Lock()
	sizes = nil
	mu.Unlock()
	big := make([]DecryptItem, 30)
	for i := range big {
		big[i] = DecryptItem{CiphertextBlob: bytes.Repeat([]byte{byte(i + 1)}, 60<<10)}
	}
	if _, err := c.DecryptBatch(context.Background(), big); err != nil {
		t.Fatal(err)
	}
	got := batchSizes()
	if len(got) < 2 {
		t.Fatalf("30×60 KiB sent in %v", got)
	}
	for _, n := range got {
		if n*80<<10 > 1<<20 {
			t.Fatalf("a batch of %d big items exceeds 1 MiB", n)
		}
	}

	if res, err := c.DecryptBatch(context.Background(), nil); err != nil || len(res) != 0 {
		t.Fatalf("empty batch: %v %v", res, err)
	}
}
