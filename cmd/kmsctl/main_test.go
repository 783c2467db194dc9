package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kmsgo/kmsgo/server/audit"
	"github.com/kmsgo/kmsgo/server/config"
	"github.com/kmsgo/kmsgo/server/kmsd"
	"github.com/kmsgo/kmsgo/server/kmstest"
)

type ctl struct {
	t    *testing.T
	home string
	env  map[string]string
}

func newCtl(t *testing.T) *ctl {
	return &ctl{t: t, home: t.TempDir(), env: map[string]string{}}
}

// run executes kmsctl in-process and returns exit status, stdout, stderr.
func (c *ctl) run(stdin string, args ...string) (int, string, string) {
	c.t.Helper()
	var out, errb bytes.Buffer
	env := Env{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb, Getenv: func(k string) string {
		if k == "HOME" {
			return c.home
		}
		return c.env[k]
	}}
	code := Execute(context.Background(), env, args)
	return code, out.String(), errb.String()
}

// ok runs and requires success.
func (c *ctl) ok(stdin string, args ...string) string {
	c.t.Helper()
	code, out, errs := c.run(stdin, args...)
	if code != 0 {
		c.t.Fatalf("kmsctl %v: exit %d\nstdout: %s\nstderr: %s", args, code, out, errs)
	}
	return out
}

// fail runs and requires exit status want with stderr containing substr.
func (c *ctl) fail(want int, substr, stdin string, args ...string) {
	c.t.Helper()
	code, out, errs := c.run(stdin, args...)
	if code != want || !strings.Contains(errs, substr) {
		c.t.Fatalf("kmsctl %v: exit %d (want %d)\nstdout: %s\nstderr: %s (want %q)", args, code, want, out, errs, substr)
	}
}

func (c *ctl) json(v any, args ...string) {
	c.t.Helper()
	out := c.ok("", append(args, "-o", "json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		c.t.Fatalf("kmsctl %v: decode %q: %v", args, out, err)
	}
}

func configured(t *testing.T, opts ...kmstest.Option) (*kmstest.Server, *ctl) {
	srv := kmstest.Start(t, opts...)
	c := newCtl(t)
	credFile := filepath.Join(t.TempDir(), "admin-credentials.json")
	b, _ := json.Marshal(map[string]string{"access_key_id": srv.AccessKeyID, "secret_access_key": srv.SecretAccessKey, "region": srv.Region})
	if err := os.WriteFile(credFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	out := c.ok("", "configure", "--from-file", credFile, "--endpoint", srv.URL)
	if strings.Contains(out, srv.SecretAccessKey) {
		t.Fatal("configure printed the secret")
	}
	fi, err := os.Stat(filepath.Join(c.home, ".config", "kmsgo", "credentials"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("credentials file: %v %v", fi, err)
	}
	return srv, c
}

type keyJSON struct {
	KeyID          string            `json:"key_id"`
	KeyState       string            `json:"key_state"`
	PrimaryVersion int               `json:"primary_version"`
	Aliases        []string          `json:"aliases"`
	Tags           map[string]string `json:"tags"`
}

func TestKeysLifecycle(t *testing.T) {
	_, c := configured(t)
	var k keyJSON
	c.json(&k, "keys", "create", "--alias", "alias/orders", "--tag", "team=pay", "--description", "orders")
	if k.KeyID == "" || k.KeyState != "Enabled" || k.Tags["team"] != "pay" {
		t.Fatalf("created %+v", k)
	}
	if out := c.ok("", "keys", "list"); !strings.Contains(out, k.KeyID) || !strings.Contains(out, "alias/orders") || !strings.Contains(out, "KEY ID") {
		t.Fatalf("list table:\n%s", out)
	}
	var list []keyJSON
	c.json(&list, "keys", "list", "--tag", "team:pay")
	if len(list) != 1 || list[0].KeyID != k.KeyID {
		t.Fatalf("list json %+v", list)
	}
	if out := c.ok("", "keys", "describe", "alias/orders"); !strings.Contains(out, "Enabled") || !strings.Contains(out, k.KeyID) {
		t.Fatalf("describe:\n%s", out)
	}
	c.json(&k, "keys", "disable", "alias/orders")
	if k.KeyState != "Disabled" {
		t.Fatalf("disable: %s", k.KeyState)
	}
	c.fail(1, "InvalidKeyState", "", "encrypt", "--key", "alias/orders", "--plaintext", "x")
	c.json(&k, "keys", "enable", k.KeyID)
	c.json(&k, "keys", "rotate", k.KeyID)
	if k.PrimaryVersion != 2 {
		t.Fatalf("rotate: version %d", k.PrimaryVersion)
	}
	if out := c.ok("", "keys", "versions", k.KeyID); strings.Count(out, "Enabled") != 2 {
		t.Fatalf("versions:\n%s", out)
	}
	c.ok("", "keys", "alias", "alias/second", k.KeyID)
	if out := c.ok("", "keys", "aliases", k.KeyID); !strings.Contains(out, "alias/second") || !strings.Contains(out, "alias/orders") {
		t.Fatalf("aliases:\n%s", out)
	}
	c.ok("", "keys", "alias", "alias/second", "--delete")
	c.fail(1, "NotFound", "", "keys", "describe", "alias/second")
	if out := c.ok("", "keys", "tag", k.KeyID, "env=prod", "--remove", "team"); !strings.Contains(out, "env=prod") || strings.Contains(out, "team") {
		t.Fatalf("tag:\n%s", out)
	}
	if out := c.ok("", "keys", "rotation-policy", k.KeyID, "--enable", "--period-days", "90"); !strings.Contains(out, "90") {
		t.Fatalf("rotation policy:\n%s", out)
	}
	c.json(&k, "keys", "schedule-deletion", k.KeyID, "--days", "7")
	if k.KeyState != "PendingDeletion" {
		t.Fatalf("schedule-deletion: %s", k.KeyState)
	}
	c.fail(1, "ValidationError", "", "keys", "schedule-deletion", k.KeyID, "--days", "3")
	c.json(&k, "keys", "cancel-deletion", k.KeyID)
	if k.KeyState != "Disabled" {
		t.Fatalf("cancel-deletion: %s", k.KeyState)
	}

	// BYOK.
	var ext keyJSON
	c.json(&ext, "keys", "create", "--origin", "EXTERNAL")
	material := make([]byte, 32)
	_, _ = rand.Read(material)
	mf := filepath.Join(t.TempDir(), "key.bin")
	if err := os.WriteFile(mf, material, 0o600); err != nil {
		t.Fatal(err)
	}
	c.json(&ext, "keys", "import", ext.KeyID, "--material-file", mf)
	if ext.KeyState != "Enabled" {
		t.Fatalf("import: %s", ext.KeyState)
	}
	short := filepath.Join(t.TempDir(), "short.bin")
	if err := os.WriteFile(short, []byte("12345"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.fail(1, "16 or 32", "", "keys", "import", ext.KeyID, "--material-file", short)
}

func TestCryptoCommands(t *testing.T) {
	_, c := configured(t)
	c.ok("", "keys", "create", "--alias", "alias/app")
	blob := strings.TrimSpace(c.ok("", "encrypt", "--key", "alias/app", "--plaintext", "hello", "--context", "tenant=7"))
	if _, err := base64.StdEncoding.DecodeString(blob); err != nil {
		t.Fatalf("encrypt output %q", blob)
	}
	if out := c.ok("", "decrypt", "--ciphertext", blob, "--context", "tenant=7"); out != "hello" {
		t.Fatalf("decrypt %q", out)
	}
	if out := c.ok(blob+"\n", "decrypt", "--context", "tenant=7", "--base64"); strings.TrimSpace(out) != base64.StdEncoding.EncodeToString([]byte("hello")) {
		t.Fatalf("decrypt stdin base64 %q", out)
	}
	c.fail(1, "InvalidCiphertext", "", "decrypt", "--ciphertext", blob, "--context", "tenant=8")
	c.fail(1, "not valid base64", "", "decrypt", "--ciphertext", "@@@")

	enc := strings.TrimSpace(c.ok("s3cret-password\n", "enc", "--key", "alias/app"))
	if !strings.HasPrefix(enc, "ENC(") || !strings.HasSuffix(enc, ")") {
		t.Fatalf("enc output %q", enc)
	}
	if out := c.ok("", "decrypt", "--ciphertext", enc); out != "s3cret-password" {
		t.Fatalf("decrypt ENC: %q", out)
	}
	if enc2 := strings.TrimSpace(c.ok("", "enc", "--key", "alias/app", "literal")); enc2 == enc {
		t.Fatal("two encryptions gave the same ciphertext")
	}

	var dk struct {
		KeyID          string `json:"key_id"`
		Plaintext      []byte `json:"plaintext"`
		CiphertextBlob []byte `json:"ciphertext_blob"`
	}
	c.json(&dk, "datakey", "--key", "alias/app")
	if len(dk.Plaintext) != 32 || len(dk.CiphertextBlob) == 0 {
		t.Fatalf("datakey %+v", dk)
	}
	out := c.ok("", "decrypt", "--base64", "--ciphertext", base64.StdEncoding.EncodeToString(dk.CiphertextBlob))
	if strings.TrimSpace(out) != base64.StdEncoding.EncodeToString(dk.Plaintext) {
		t.Fatal("data key does not decrypt to its plaintext")
	}
	if out := c.ok("", "datakey", "--key", "alias/app", "--no-plaintext"); strings.Contains(out, "Plaintext") {
		t.Fatalf("--no-plaintext printed a plaintext:\n%s", out)
	}
}

func TestAccessKeysAndEnvCredentials(t *testing.T) {
	srv, c := configured(t)
	c.ok("", "keys", "create", "--alias", "alias/svc")
	var ak struct {
		AccessKeyID     string `json:"access_key_id"`
		SecretAccessKey string `json:"secret_access_key"`
	}
	c.json(&ak, "access-keys", "create", "--description", "svc", "--policy",
		`{"statements":[{"effect":"Allow","actions":["kms:Encrypt"],"resources":["alias/svc"]}]}`)
	if ak.SecretAccessKey == "" {
		t.Fatal("no secret on create")
	}
	if out := c.ok("", "access-keys", "list"); !strings.Contains(out, ak.AccessKeyID) || strings.Contains(out, ak.SecretAccessKey) {
		t.Fatalf("list:\n%s", out)
	}
	c.fail(1, "deny-by-default", "", "access-keys", "create")

	// Environment credentials win over the profile.
	svc := &ctl{t: t, home: t.TempDir(), env: map[string]string{
		"KMS_ENDPOINT": srv.URL, "KMS_ACCESS_KEY_ID": ak.AccessKeyID, "KMS_SECRET_ACCESS_KEY": ak.SecretAccessKey,
	}}
	svc.ok("", "encrypt", "--key", "alias/svc", "--plaintext", "x")
	svc.fail(1, "AccessDenied", "", "keys", "list")
	c.ok("", "access-keys", "disable", ak.AccessKeyID)
	c.ok("", "access-keys", "enable", ak.AccessKeyID)
	c.ok("", "access-keys", "delete", ak.AccessKeyID)
	c.fail(1, "NotFound", "", "access-keys", "describe", ak.AccessKeyID)

	// No credentials at all.
	none := newCtl(t)
	none.fail(1, "no credentials", "", "keys", "list")
	// A profile file readable by others is refused.
	p := filepath.Join(c.home, ".config", "kmsgo", "credentials")
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	c.fail(1, "chmod 600", "", "keys", "list")
}

func TestAuditCommands(t *testing.T) {
	srv, c := configured(t)
	c.ok("", "keys", "create")
	c.ok("", "keys", "list")
	if out := c.ok("", "audit", "list", "--all"); !strings.Contains(out, "kms:CreateKey") || !strings.Contains(out, "kms:ListKeys") {
		t.Fatalf("audit list:\n%s", out)
	}
	if out := c.ok("", "audit", "verify"); !strings.Contains(out, "OK") {
		t.Fatalf("verify:\n%s", out)
	}
	// Tamper with a stored record: verify must report it and exit 2.
	if err := srv.App.DB.Exec("UPDATE kms_audit_records SET action = 'kms:Forged' WHERE seq = 2").Error; err != nil {
		t.Fatal(err)
	}
	code, out, errs := c.run("", "audit", "verify")
	if code != 2 || !strings.Contains(out, "seq 2") || !strings.Contains(errs, "broken") {
		t.Fatalf("verify after tampering: exit %d\n%s\n%s", code, out, errs)
	}
}

func TestHelpExplains(t *testing.T) {
	c := newCtl(t)
	for _, args := range [][]string{{"--help"}, {"enc", "--help"}, {"keys", "--help"}, {"audit", "verify", "--help"}} {
		out := c.ok("", args...)
		if len(out) < 200 || !strings.Contains(out, "Usage:") {
			t.Fatalf("%v help too thin:\n%s", args, out)
		}
	}
	if out := c.ok("", "enc", "--help"); !strings.Contains(out, "ENC(") || !strings.Contains(out, "Nacos") {
		t.Fatalf("enc help:\n%s", out)
	}
	c.fail(1, "unknown command", "", "frobnicate")
	c.fail(1, "unknown output format", "", "keys", "list", "-o", "yaml", "--endpoint", "http://127.0.0.1:1")
}

func TestParseENC(t *testing.T) {
	for in, want := range map[string]string{
		"ENC(abc=)":    "abc=",
		"  ENC(x)\n":   "x",
		"abc":          "abc",
		"ENC(unclosed": "ENC(unclosed",
		"ENC()":        "",
		"enc(lower)":   "enc(lower)",
	} {
		if got := ParseENC(in); got != want {
			t.Errorf("ParseENC(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestConfigureFromFileUsesEndpoint: kmsd writes its endpoint into the
// credentials file; configure --from-file without --endpoint uses it (a kmsd
// on a non-default port, here a random one).
func TestConfigureFromFileUsesEndpoint(t *testing.T) {
	srv := kmstest.Start(t)
	c := newCtl(t)
	credFile := filepath.Join(t.TempDir(), "admin-credentials.json")
	b, _ := json.Marshal(map[string]string{"access_key_id": srv.AccessKeyID, "secret_access_key": srv.SecretAccessKey,
		"region": srv.Region, "endpoint": srv.URL})
	if err := os.WriteFile(credFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if out := c.ok("", "configure", "--from-file", credFile); !strings.Contains(out, srv.URL) {
		t.Fatalf("configure did not take the endpoint: %s", out)
	}
	c.ok("", "keys", "create", "--alias", "alias/reached")
}

// TestAuditVerifyAnchors saves the heads that verify reports as an anchor
// file, truncates the chain's tail in the database, and checks that plain
// verify cannot tell while verify --anchors FILE reports the truncation
// and exits 2.
func TestAuditVerifyAnchors(t *testing.T) {
	srv, c := configured(t)
	// A second replica on the same database writes a chain and stops:
	// its tail is what gets truncated.
	b := kmstest.Start(t, kmstest.WithDB(srv.App.DB), kmstest.WithHSM(srv.App.HSM), kmstest.WithConfig(func(cfg *config.Config) {
		cfg.ReplicaID = "replica-b"
		cfg.Jobs.Enabled = false
		cfg.Audit.ChainKeyFile = filepath.Join(srv.App.Config.DataDir, "audit-chain.key")
	}))
	for range 3 {
		if code, body := b.Do(t, "GET", "/v1/keys", nil); code != 200 {
			t.Fatalf("list keys on replica b: %d %s", code, body)
		}
	}
	b.HTTP.Close()
	if err := b.App.Close(); err != nil {
		t.Fatal(err)
	}
	var res struct {
		OK    bool `json:"ok"`
		Heads []struct {
			Replica string `json:"replica"`
			Seq     int64  `json:"seq"`
			Hash    string `json:"hash"`
		} `json:"heads"`
	}
	c.json(&res, "audit", "verify")
	if !res.OK || len(res.Heads) == 0 || res.Heads[len(res.Heads)-1].Replica != "replica-b" || res.Heads[len(res.Heads)-1].Seq != 3 {
		t.Fatalf("verify: %+v", res)
	}
	var lines []string
	for _, h := range res.Heads {
		b, _ := json.Marshal(h)
		lines = append(lines, string(b))
	}
	anchors := filepath.Join(t.TempDir(), "anchors.jsonl")
	if err := os.WriteFile(anchors, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := c.ok("", "audit", "verify", "--anchors", anchors); !strings.Contains(out, "OK") || !strings.Contains(out, fmt.Sprintf("%d anchors", len(res.Heads))) {
		t.Fatalf("verify --anchors before truncation:\n%s", out)
	}
	if err := srv.App.DB.Exec("DELETE FROM kms_audit_records WHERE replica_id = ? AND seq >= ?", "replica-b", 2).Error; err != nil {
		t.Fatal(err)
	}
	if out := c.ok("", "audit", "verify"); !strings.Contains(out, "OK") {
		t.Fatalf("verify without anchors after truncation (undetectable there):\n%s", out)
	}
	code, out, errs := c.run("", "audit", "verify", "--anchors", anchors)
	if code != 2 || !strings.Contains(out, "anchor_mismatch") || !strings.Contains(errs, "broken") {
		t.Fatalf("verify --anchors after truncation: exit %d\n%s\n%s", code, out, errs)
	}
	c.fail(1, "", "", "audit", "verify", "--anchors", filepath.Join(t.TempDir(), "missing"))
}

// TestAuditExportAndRetention exports every chain as sealed segment files,
// checks each file verifies offline under the chain key, lets retention
// delete the exported records, and checks the chains still verify across
// the boundary; a second export writes only the new records.
func TestAuditExportAndRetention(t *testing.T) {
	srv, c := configured(t)
	for range 5 {
		c.ok("", "keys", "list")
	}
	dir := filepath.Join(t.TempDir(), "export")
	out := c.ok("", "audit", "export", "--dir", dir, "--limit", "2")
	if !strings.Contains(out, "exported") {
		t.Fatalf("export:\n%s", out)
	}
	key, err := kmsd.LoadOrCreateChainKey(filepath.Join(srv.App.Config.DataDir, "audit-chain.key"))
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.jsonl"))
	if len(files) < 3 {
		t.Fatalf("segment files: %v", files)
	}
	var exported int64
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v", f, st, err)
		}
		r, _ := os.Open(f)
		seg, err := audit.ReadSegment(r)
		r.Close()
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if err := audit.CheckSegment(key, seg); err != nil {
			t.Fatalf("%s does not verify: %v", f, err)
		}
		exported += seg.Seal.Count
	}
	n, err := audit.DeleteExported(context.Background(), srv.App.DB, key, time.Now().Add(time.Minute))
	if err != nil || n == 0 || n > exported {
		t.Fatalf("retention deleted %d of %d exported: %v", n, exported, err)
	}
	if out := c.ok("", "audit", "verify", "--timeout", "2m"); !strings.Contains(out, "OK") {
		t.Fatalf("verify after retention:\n%s", out)
	}
	out = c.ok("", "audit", "export", "--dir", dir)
	if !strings.Contains(out, "exported") || strings.Contains(out, "-1-") {
		t.Fatalf("second export:\n%s", out)
	}
	// A resumed verification starts from the last intact one.
	var v struct {
		OK          bool              `json:"ok"`
		ResumedFrom []json.RawMessage `json:"resumed_from"`
	}
	c.json(&v, "audit", "verify", "--resume")
	c.json(&v, "audit", "verify", "--resume")
	if !v.OK || len(v.ResumedFrom) != 1 {
		t.Fatalf("resumed verify: %+v", v)
	}
}
