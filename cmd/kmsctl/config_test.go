package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kmsgo/kmsgo/configcenter"
	"github.com/kmsgo/kmsgo/configcenter/file"
	"github.com/kmsgo/kmsgo/starter/kmsclient"
)

// encrypt-file keeps everything but the DEC markers, the result decrypts
// through configcenter to the original plaintexts, decrypt-file prints the
// original view, and inspect shows key id and version across a rotation.
func TestConfigFileCommands(t *testing.T) {
	srv, c := configured(t)
	var k keyJSON
	c.json(&k, "keys", "create", "--alias", "alias/app-config")
	dir := t.TempDir()
	const canary = "CANARY-kmsctl-config"
	files := []struct {
		name     string
		content  string
		plain    map[string]string // path -> plaintext after configcenter decrypts
		original string            // the decrypted view
	}{
		{"app.yaml", "# database\ndb:\n  user: app   # not secret\n  password: DEC(" + canary + "(1))  # secret\nlist:\n  - DEC(a b)\n",
			map[string]string{"db.password": canary + "(1)", "db.user": "app"},
			"# database\ndb:\n  user: app   # not secret\n  password: " + canary + "(1)  # secret\nlist:\n  - a b\n"},
		{"app.properties", "# props\ndb.password = DEC(" + canary + "\\=x)\nplain=1\n",
			map[string]string{"db.password": canary + "=x", "plain": "1"},
			"# props\ndb.password = " + canary + "=x\nplain=1\n"},
		{"app.json", "{\n  \"db\": {\"password\": \"DEC(" + canary + "\\\"q)\"},\n  \"n\": 1\n}\n",
			map[string]string{"db.password": canary + "\"q", "n": "1"},
			"{\n  \"db\": {\"password\": \"" + canary + "\"q\"},\n  \"n\": 1\n}\n"},
	}
	client, err := kmsclient.New(kmsclient.Config{Endpoint: srv.URL, AccessKeyID: srv.AccessKeyID, SecretAccessKey: srv.SecretAccessKey, Region: srv.Region})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		t.Run(f.name, func(t *testing.T) {
			p := filepath.Join(dir, f.name)
			if err := os.WriteFile(p, []byte(f.content), 0o640); err != nil {
				t.Fatal(err)
			}
			out := c.ok("", "config", "encrypt-file", "--key", "alias/app-config", p)
			if !strings.Contains(out, "encrypted") {
				t.Fatalf("output %q", out)
			}
			raw, _ := os.ReadFile(p)
			if strings.Contains(string(raw), canary) || strings.Contains(string(raw), "DEC(") || !strings.Contains(string(raw), "ENC(") {
				t.Fatalf("file after encrypt-file:\n%s", raw)
			}
			if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o640 {
				t.Fatalf("mode %v", fi.Mode().Perm())
			}
			// Layout kept: same lines outside the markers.
			if strings.Count(string(raw), "\n") != strings.Count(f.content, "\n") || (strings.Contains(f.content, "# ") && !strings.Contains(string(raw), "# ")) {
				t.Fatalf("layout changed:\n%s", raw)
			}
			cfg, err := configcenter.New(context.Background(), configcenter.Options{
				Sources: []configcenter.Source{file.New(p, file.Options{})}, Decrypter: client})
			if err != nil {
				t.Fatal(err)
			}
			for path, want := range f.plain {
				if got := cfg.Snapshot().String(path, ""); got != want {
					t.Errorf("%s = %q, want %q", path, got, want)
				}
			}
			cfg.Close()
			if got := c.ok("", "config", "decrypt-file", p); got != f.original {
				t.Errorf("decrypt-file:\n%s\nwant:\n%s", got, f.original)
			}
			if after, _ := os.ReadFile(p); string(after) != string(raw) {
				t.Fatal("decrypt-file changed the file")
			}
			var rows []struct {
				Path       string `json:"path"`
				KeyID      string `json:"key_id"`
				KeyVersion int    `json:"key_version"`
			}
			c.json(&rows, "config", "inspect", p)
			if len(rows) == 0 || rows[0].Path != "db.password" && rows[0].Path != "list[0]" {
				t.Fatalf("inspect %+v", rows)
			}
			for _, r := range rows {
				if r.KeyID != k.KeyID || r.KeyVersion != 1 {
					t.Fatalf("inspect row %+v", r)
				}
			}
		})
	}

	// After a rotation, newly encrypted values show version 2 next to old ones.
	c.ok("", "keys", "rotate", k.KeyID)
	p := filepath.Join(dir, "app.yaml")
	raw, _ := os.ReadFile(p)
	if err := os.WriteFile(p, append(raw, []byte("token: DEC(new)\n")...), 0o640); err != nil {
		t.Fatal(err)
	}
	c.ok("", "config", "encrypt-file", "--key", "alias/app-config", p)
	out := c.ok("", "config", "inspect", p)
	for _, want := range []string{"PATH", "db.password", "list[0]", "token", k.KeyID} {
		if !strings.Contains(out, want) {
			t.Fatalf("inspect lacks %q:\n%s", want, out)
		}
	}
	var rows []struct {
		Path       string `json:"path"`
		KeyVersion int    `json:"key_version"`
	}
	if err := json.Unmarshal([]byte(c.ok("", "config", "inspect", p, "-o", "json")), &rows); err != nil {
		t.Fatal(err)
	}
	versions := map[string]int{}
	for _, r := range rows {
		versions[r.Path] = r.KeyVersion
	}
	if versions["db.password"] != 1 || versions["token"] != 2 {
		t.Fatalf("versions %v", versions)
	}
}

func TestConfigFileCommandErrors(t *testing.T) {
	_, c := configured(t)
	c.ok("", "keys", "create", "--alias", "alias/e")
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	unterminated := write("u.yaml", "a: DEC(secret\n")
	c.fail(1, "line 1: DEC( without a matching", "", "config", "encrypt-file", "--key", "alias/e", unterminated)
	breaks := write("b.json", `{"a": "DEC(x\q)"}`)
	c.fail(1, "not valid inside a JSON string", "", "config", "encrypt-file", "--key", "alias/e", breaks)
	if raw, _ := os.ReadFile(breaks); string(raw) != `{"a": "DEC(x\q)"}` {
		t.Fatal("file changed after a failure")
	}
	c.fail(1, "--key is required", "", "config", "encrypt-file", write("k.yaml", "a: DEC(x)\n"))
	if out := c.ok("", "config", "encrypt-file", "--key", "alias/e", write("n.yaml", "a: 1\n")); !strings.Contains(out, "no DEC") {
		t.Fatalf("out %q", out)
	}
	bad := write("bad.yaml", "a: ENC(AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA)\n")
	c.fail(1, "line 1", "", "config", "decrypt-file", bad)
	c.fail(1, "not kmsd ciphertexts", "", "config", "inspect", bad)
}

func TestFindDECMarkers(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		err  bool
	}{
		{"a: DEC(x)", []string{"x"}, false},
		{"a: DEC(f(x)) DEC(y)", []string{"f(x)", "y"}, false},
		{"a: DEC()", []string{""}, false},
		{"a: DEC(x\n)", nil, true},
		{"no markers", nil, false},
	}
	for _, tc := range tests {
		got, err := findDECMarkers(tc.in)
		if (err != nil) != tc.err {
			t.Fatalf("%q: err %v", tc.in, err)
		}
		var contents []string
		for _, m := range got {
			contents = append(contents, m.content)
		}
		if strings.Join(contents, "|") != strings.Join(tc.want, "|") {
			t.Fatalf("%q: got %q", tc.in, contents)
		}
	}
}

// FuzzFindDECMarkers: markers are in bounds, ordered, on one line, and
// their text is DEC(content).
func FuzzFindDECMarkers(f *testing.F) {
	for _, s := range []string{"a: DEC(x)", "a: DEC(f(x)) DEC(y)", "DEC(", "DEC(()", "x: DEC(a\n)"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ms, err := findDECMarkers(s)
		if err != nil {
			return
		}
		last := 0
		for _, m := range ms {
			if m.start < last || m.end > len(s) || s[m.start:m.end] != "DEC("+m.content+")" || strings.Contains(m.content, "\n") {
				t.Fatalf("bad marker %+v in %q", m, s)
			}
			last = m.end
		}
	})
}
