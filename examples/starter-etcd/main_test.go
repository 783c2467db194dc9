package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"

	"github.com/kmsgo/kmsgo/configcenter/etcd/etcdtest"
	"github.com/kmsgo/kmsgo/server/kmstest"
	"github.com/kmsgo/kmsgo/starter/kmsclient"
)

// The example runs against an in-process kmsd and an embedded etcd: it
// reads its DSN (ENC) and greeting from etcd, stores customers with the
// e-mail encrypted, finds them by e-mail, and follows a greeting change.
func TestStarterEtcdExample(t *testing.T) {
	srv := kmstest.Start(t)
	admin, err := kmsclient.New(kmsclient.Config{Endpoint: srv.URL, AccessKeyID: srv.AccessKeyID, SecretAccessKey: srv.SecretAccessKey, Region: srv.Region})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := admin.CreateKey(ctx, kmsclient.CreateKeyInput{Description: "example", Alias: "alias/demo"}); err != nil {
		t.Fatal(err)
	}
	enc := func(s string) string {
		r, err := admin.Encrypt(ctx, "alias/demo", []byte(s), nil)
		if err != nil {
			t.Fatal(err)
		}
		return "ENC(" + base64.StdEncoding.EncodeToString(r.CiphertextBlob) + ")"
	}
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "app.db")
	etcd := etcdtest.Start(t)
	cli := etcd.Client(t)
	put := func(greeting string) {
		doc := fmt.Sprintf("app:\n  greeting: %s\ndb:\n  dsn: %s\n", greeting, enc("file:"+dbPath+"?_journal_mode=WAL&_busy_timeout=10000"))
		if _, err := cli.Put(ctx, "/kmsgo-example/app.yaml", doc); err != nil {
			t.Fatal(err)
		}
	}
	put("hello")

	// The checked-in kmsgo.yaml, pointed at the test servers.
	creds, _ := json.Marshal(map[string]string{"access_key_id": srv.AccessKeyID, "secret_access_key": srv.SecretAccessKey, "region": srv.Region})
	credPath := filepath.Join(dir, "admin-credentials.json")
	if err := os.WriteFile(credPath, creds, 0o600); err != nil {
		t.Fatal(err)
	}
	yml, err := os.ReadFile("kmsgo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.NewReplacer("http://127.0.0.1:8400", srv.URL, ".kmsgo-data/admin-credentials.json", credPath,
		"127.0.0.1:2379", strings.TrimPrefix(etcd.Endpoint, "http://")).Replace(string(yml))
	cfgPath := filepath.Join(dir, "kmsgo.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	addrc := make(chan string, 1)
	done := make(chan error, 1)
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		done <- run(rctx, []string{"--config", cfgPath, "--listen", "127.0.0.1:0"}, func(a string) { addrc <- a })
	}()
	var base string
	select {
	case a := <-addrc:
		base = "http://" + a
	case err := <-done:
		t.Fatalf("run: %v", err)
	}
	exampleFlow(t, base, dbPath, put)
	stop()
	if err := <-done; err != nil {
		t.Fatalf("run returned %v", err)
	}
}

// exampleFlow drives the service's routes.
func exampleFlow(t *testing.T, base, dbPath string, setGreeting func(string)) {
	t.Helper()
	do := func(method, path string, body any, out any) int {
		t.Helper()
		var b []byte
		if body != nil {
			b, _ = json.Marshal(body)
		}
		req, _ := http.NewRequest(method, base+path, bytes.NewReader(b))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if out != nil {
			if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
				t.Fatalf("%s %s: %v", method, path, err)
			}
		}
		return resp.StatusCode
	}
	var c Customer
	if code := do("POST", "/customers", map[string]string{"name": "Ada", "email": "ada@example.com"}, &c); code != http.StatusCreated || c.ID == 0 {
		t.Fatalf("create: %d %+v", code, c)
	}
	var got Customer
	if code := do("GET", fmt.Sprintf("/customers/%d", c.ID), nil, &got); code != http.StatusOK || got.Email != "ada@example.com" {
		t.Fatalf("get: %d %+v", code, got)
	}
	var found []Customer
	if do("GET", "/customers?email=ada@example.com", nil, &found); len(found) != 1 || found[0].ID != c.ID {
		t.Fatalf("search: %+v", found)
	}
	if do("GET", "/customers?email=bob@example.com", nil, &found); len(found) != 0 {
		t.Fatalf("search for another e-mail: %+v", found)
	}
	// Stored encrypted.
	raw, err := sql.Open("sqlite3", "file:"+dbPath+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var stored string
	if err := raw.QueryRow("SELECT email FROM customers WHERE id = ?", c.ID).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(stored, "kms1:") || strings.Contains(stored, "ada@example.com") {
		t.Fatalf("e-mail stored as %q", stored)
	}
	// Hot reload.
	var g map[string]string
	if do("GET", "/greeting", nil, &g); g["greeting"] != "hello" {
		t.Fatalf("greeting %v", g)
	}
	setGreeting("bonjour")
	deadline := time.Now().Add(30 * time.Second)
	for do("GET", "/greeting", nil, &g); g["greeting"] != "bonjour"; do("GET", "/greeting", nil, &g) {
		if time.Now().After(deadline) {
			t.Fatalf("greeting still %v", g)
		}
		time.Sleep(50 * time.Millisecond)
	}
	var h struct{ OK bool }
	if code := do("GET", "/healthz", nil, &h); code != http.StatusOK || !h.OK {
		t.Fatalf("healthz %d %+v", code, h)
	}
}
