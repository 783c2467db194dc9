package main

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kmsgo/kmsgo/starter/kmsclient/envelope"
)

// onlyFiles fails the test if dir holds anything but names (no
// temporary files left behind).
func onlyFiles(t *testing.T, dir string, names ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if strings.Join(got, ",") != strings.Join(names, ",") {
		t.Fatalf("files in dir: %v, want %v", got, names)
	}
}

func mode600(t *testing.T, path string) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("%s: %v %v, want mode 0600", path, fi, err)
	}
}

func TestFileCommands(t *testing.T) {
	_, c := configured(t)
	var ka, kb keyJSON
	c.json(&ka, "keys", "create", "--alias", "alias/files-a")
	c.json(&kb, "keys", "create", "--alias", "alias/files-b")
	dir := t.TempDir()
	p := func(n string) string { return filepath.Join(dir, n) }
	plain := make([]byte, 300_000)
	rand.Read(plain)
	if err := os.WriteFile(p("a.bin"), plain, 0o644); err != nil {
		t.Fatal(err)
	}

	c.ok("", "file", "encrypt", "-k", "alias/files-a", "--key", "alias/files-b", "--context", "host=db1", "--progress", "always", p("a.bin"), p("a.kms"))
	mode600(t, p("a.kms"))
	onlyFiles(t, dir, "a.bin", "a.kms")
	enc, _ := os.ReadFile(p("a.kms"))

	// inspect: no KMS needed, shows recipients, context and sizes.
	out := c.ok("", "file", "inspect", p("a.kms"))
	for _, want := range []string{ka.KeyID, kb.KeyID, "host=db1", "Chunk size:", "65536", "300000 bytes in 5 chunks", "Authenticated:  no"} {
		if !strings.Contains(out, want) {
			t.Fatalf("inspect lacks %q:\n%s", want, out)
		}
	}
	var ins struct {
		ChunkSize     int               `json:"chunk_size"`
		Context       map[string]string `json:"encryption_context"`
		Recipients    []envelope.Recipient
		PlaintextSize int64 `json:"plaintext_size"`
		FileSize      int64 `json:"file_size"`
	}
	c.json(&ins, "file", "inspect", p("a.kms"))
	if ins.ChunkSize != 65536 || ins.Context["host"] != "db1" || len(ins.Recipients) != 2 || ins.PlaintextSize != 300_000 || ins.FileSize != int64(len(enc)) {
		t.Fatalf("inspect json %+v", ins)
	}

	// decrypt, with and without the expected context.
	c.ok("", "file", "decrypt", "--context", "host=db1", p("a.kms"), p("a.out"))
	mode600(t, p("a.out"))
	if got, _ := os.ReadFile(p("a.out")); !bytes.Equal(got, plain) {
		t.Fatal("decrypted file differs")
	}
	c.fail(1, "exists (use --force", "", "file", "decrypt", p("a.kms"), p("a.out"))
	c.ok("", "file", "decrypt", "--force", p("a.kms"), p("a.out"))
	c.fail(1, "encryption context mismatch", "", "file", "decrypt", "--context", "host=db2", p("a.kms"), p("b.out"))
	onlyFiles(t, dir, "a.bin", "a.kms", "a.out")

	// A tampered body: no output file, no temporary file.
	bad := bytes.Clone(enc)
	bad[len(bad)-40] ^= 1
	os.WriteFile(p("bad.kms"), bad, 0o600)
	c.fail(1, "authentication failed", "", "file", "decrypt", p("bad.kms"), p("bad.out"))
	c.fail(1, "no recipient could unwrap", "", "file", "decrypt", "-k", "alias/not-a-recipient", p("a.kms"), p("bad.out"))
	os.WriteFile(p("short.kms"), enc[:len(enc)-(300_000-4*65536+16)], 0o600) // last chunk cut at its boundary
	c.fail(1, "authentication failed", "", "file", "decrypt", p("short.kms"), p("bad.out"))
	onlyFiles(t, dir, "a.bin", "a.kms", "a.out", "bad.kms", "short.kms")

	// stdin to stdout.
	ct := c.ok("streamed secret", "file", "encrypt", "-k", "alias/files-a", "-", "-")
	if !strings.HasPrefix(ct, envelope.Magic) || strings.Contains(ct, "streamed secret") {
		t.Fatalf("stdout ciphertext %q", ct)
	}
	if got := c.ok(ct, "file", "decrypt", "-", "-"); got != "streamed secret" {
		t.Fatalf("stdin decrypt %q", got)
	}

	// Second recipient: key A disabled, B still opens the file.
	c.ok("", "keys", "disable", "alias/files-a")
	c.ok("", "file", "decrypt", "--force", p("a.kms"), p("a.out"))
	c.ok("", "keys", "enable", "alias/files-a")

	// rewrap in place after a rotation: body untouched.
	c.ok("", "keys", "rotate", "alias/files-a")
	c.ok("", "file", "rewrap", p("a.kms"))
	mode600(t, p("a.kms"))
	re, _ := os.ReadFile(p("a.kms"))
	h1, _ := envelope.ReadHeader(bytes.NewReader(enc))
	h2, err := envelope.ReadHeader(bytes.NewReader(re))
	if err != nil || !bytes.Equal(enc[h1.Size:], re[h2.Size:]) || bytes.Equal(enc[:h1.Size], re[:h2.Size]) {
		t.Fatalf("rewrap: %v; body kept %v", err, bytes.Equal(enc[h1.Size:], re[h2.Size:]))
	}
	c.ok("", "file", "decrypt", "--force", p("a.kms"), p("a.out"))
	if got, _ := os.ReadFile(p("a.out")); !bytes.Equal(got, plain) {
		t.Fatal("decrypted rewrapped file differs")
	}

	// rewrap to B only, then disable B: a clear error.
	c.ok("", "file", "rewrap", "-k", "alias/files-b", p("a.kms"), p("b.kms"))
	if out := c.ok("", "file", "inspect", p("b.kms")); strings.Contains(out, ka.KeyID) || !strings.Contains(out, kb.KeyID) {
		t.Fatalf("rewrap -k: %s", out)
	}
	c.ok("", "keys", "disable", "alias/files-b")
	c.fail(1, "Decrypt on a Disabled key", "", "file", "decrypt", p("b.kms"), p("b.out"))
	if _, err := os.Stat(p("b.out")); !os.IsNotExist(err) {
		t.Fatal("output left behind after failure")
	}
	c.fail(1, "--key is required", "", "file", "encrypt", p("a.bin"), p("c.kms"))
}

func TestFileProgress(t *testing.T) {
	_, c := configured(t)
	c.ok("", "keys", "create", "--alias", "alias/progress")
	dir := t.TempDir()
	in := filepath.Join(dir, "in")
	os.WriteFile(in, make([]byte, 1<<20), 0o600)
	_, _, errs := c.run("", "file", "encrypt", "-k", "alias/progress", "--progress", "always", in, filepath.Join(dir, "out"))
	if !strings.Contains(errs, "100%") || !strings.Contains(errs, "1.0 / 1.0 MiB") {
		t.Fatalf("progress: %q", errs)
	}
	// auto: stderr is not a terminal here, so nothing is drawn.
	_, _, errs = c.run("", "file", "decrypt", filepath.Join(dir, "out"), filepath.Join(dir, "back"))
	if errs != "" {
		t.Fatalf("auto progress on a non-terminal: %q", errs)
	}
	var js json.RawMessage
	c.json(&js, "file", "inspect", filepath.Join(dir, "out"))
}
