package main

import (
	"strings"
	"testing"
	"time"

	"github.com/kmsgo/kmsgo/server/config"
	"github.com/kmsgo/kmsgo/server/kmstest"
)

type versionJSON struct {
	Version      int        `json:"version"`
	State        string     `json:"state"`
	Primary      bool       `json:"primary"`
	DecryptCount int64      `json:"decrypt_count"`
	LastUsedAt   *time.Time `json:"last_used_at"`
}

// TestKeysRetireVersion drives retirement through kmsctl: versions shows
// usage, disable-version is refused while in use and for the primary,
// works with --force and after the quiet period, and enable-version undoes it.
func TestKeysRetireVersion(t *testing.T) {
	const quietPeriod = time.Second
	_, c := configured(t, kmstest.WithConfig(func(cfg *config.Config) {
		cfg.KMS.RetirementQuietPeriod = quietPeriod
		cfg.KMS.UsageFlushInterval = 100 * time.Millisecond
	}))
	var k keyJSON
	c.json(&k, "keys", "create", "--alias", "alias/retire")
	ct := strings.TrimSpace(c.ok("", "encrypt", "--key", "alias/retire", "--plaintext", "old secret"))
	c.json(&k, "keys", "rotate", "alias/retire")
	if out := c.ok("", "decrypt", "--ciphertext", ct); out != "old secret" {
		t.Fatalf("decrypt: %q", out)
	}

	out := c.ok("", "keys", "versions", "alias/retire")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.Contains(lines[0], "DECRYPTS") || !strings.Contains(lines[0], "LAST USED") ||
		strings.Fields(lines[1])[4] != "1" || strings.Fields(lines[1])[5] == "-" || strings.Fields(lines[2])[5] != "-" {
		t.Fatalf("versions table:\n%s", out)
	}
	var vs []versionJSON
	c.json(&vs, "keys", "versions", k.KeyID)
	if len(vs) != 2 || vs[0].DecryptCount != 1 || vs[0].LastUsedAt == nil || vs[1].DecryptCount != 0 || !vs[1].Primary {
		t.Fatalf("versions json %+v", vs)
	}

	c.fail(1, "VersionInUse", "", "keys", "disable-version", "alias/retire", "1")
	c.fail(1, "rotate", "", "keys", "disable-version", "alias/retire", "2", "--force")
	c.fail(1, "positive integer", "", "keys", "disable-version", "alias/retire", "one")
	c.fail(1, "NotFound", "", "keys", "enable-version", "alias/retire", "7")

	var v versionJSON
	c.json(&v, "keys", "disable-version", "alias/retire", "1", "--force")
	if v.Version != 1 || v.State != "Disabled" {
		t.Fatalf("forced disable %+v", v)
	}
	c.fail(1, "KeyVersionDisabled", "", "decrypt", "--ciphertext", ct)
	if out := c.ok("", "keys", "enable-version", "alias/retire", "1"); !strings.Contains(out, "Enabled") {
		t.Fatalf("enable-version:\n%s", out)
	}
	if out := c.ok("", "decrypt", "--ciphertext", ct); out != "old secret" {
		t.Fatalf("decrypt after enable: %q", out)
	}

	// Quiet for longer than the quiet period: no force needed.
	time.Sleep(quietPeriod + 100*time.Millisecond)
	if out := c.ok("", "keys", "disable-version", "alias/retire", "1"); !strings.Contains(out, "Disabled") || !strings.Contains(out, "Decrypts:") {
		t.Fatalf("disable-version after the quiet period:\n%s", out)
	}
	if out := c.ok("", "keys", "disable-version", "--help"); !strings.Contains(out, "quiet period") || !strings.Contains(out, "rotate") {
		t.Fatalf("help:\n%s", out)
	}
}
