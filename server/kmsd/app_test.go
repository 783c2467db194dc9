package kmsd_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/kmsgo/kmsgo/hsm/p11/softhsmtest"
	"github.com/kmsgo/kmsgo/server/config"
	"github.com/kmsgo/kmsgo/server/internal/migrate"
	"github.com/kmsgo/kmsgo/server/kmsd"
)

// TestOpenWithPKCS11 assembles a kmsd on a SoftHSM2 token (PIN from a file)
// and checks that migrations ran, the bootstrap admin is written once, and
// the handler serves.
func TestOpenWithPKCS11(t *testing.T) {
	tok := softhsmtest.New(t)
	dir := t.TempDir()
	pinFile := filepath.Join(dir, "pin")
	if err := os.WriteFile(pinFile, []byte(tok.PIN+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := config.Defaults()
	c.DataDir = filepath.Join(dir, "data")
	c.HSM = config.HSMConfig{Backend: "pkcs11", Module: tok.ModulePath, TokenLabel: tok.TokenLabel,
		PINEnv: "KMSD_TEST_UNSET_PIN_VAR", PINFile: pinFile, CreateRootKey: true, PoolSize: 2}
	ctx := context.Background()
	app, err := kmsd.Open(ctx, c, kmsd.Deps{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()

	applied, err := migrate.Applied(app.DB)
	if err != nil || len(applied) != len(kmsd.Migrations()) {
		t.Fatalf("applied %v (%v), want %d steps", applied, err, len(kmsd.Migrations()))
	}
	if st := app.HSM.Stats(); st.Size != 2 || !st.Available {
		t.Fatalf("HSM stats %+v", st)
	}
	p, err := app.EnsureBootstrapAdmin(ctx)
	if err != nil || p != c.BootstrapPath() {
		t.Fatalf("bootstrap: %q %v", p, err)
	}
	fi, err := os.Stat(p)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("bootstrap file %v %v", fi, err)
	}
	var cred struct {
		AccessKeyID string `json:"access_key_id"`
	}
	raw, _ := os.ReadFile(p)
	if err := json.Unmarshal(raw, &cred); err != nil || cred.AccessKeyID == "" {
		t.Fatalf("bootstrap content: %v", err)
	}
	if p, err := app.EnsureBootstrapAdmin(ctx); err != nil || p != "" {
		t.Fatalf("second bootstrap: %q %v", p, err)
	}
	srv := httptest.NewServer(app.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("readyz %d", resp.StatusCode)
	}
}

func TestOpenRefusesMissingPIN(t *testing.T) {
	c := config.Defaults()
	c.DataDir = t.TempDir()
	c.HSM = config.HSMConfig{Backend: "pkcs11", Module: "/nonexistent.so", TokenLabel: "x", PINEnv: "KMSD_TEST_UNSET_PIN_VAR"}
	if _, err := kmsd.Open(context.Background(), c, kmsd.Deps{}, nil); err == nil {
		t.Fatal("opened without a PIN")
	}
}
