package kmsd_test

import (
	"net/http"
	"os/exec"
	"testing"
	"time"

	"github.com/kmsgo/kmsgo/hsm/p11"
	"github.com/kmsgo/kmsgo/hsm/p11/softhsmtest"
	"github.com/kmsgo/kmsgo/server/config"
	"github.com/kmsgo/kmsgo/server/kmstest"
)

// TestReadyzTokenGoneWithoutTraffic (issue 9 item 4): with the SoftHSM
// token deleted behind kmsd's back and no request at all, /readyz turns
// 503 within about the readiness cache window (it proves the token with a
// real wrap under the root key; before, it stayed 200 for 20 s).
func TestReadyzTokenGoneWithoutTraffic(t *testing.T) {
	util, err := exec.LookPath("softhsm2-util")
	if err != nil {
		t.Fatalf("softhsm2-util: %v (%s)", err, softhsmtest.InstallHint)
	}
	cfg := softhsmtest.New(t)
	b, err := p11.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	srv := kmstest.Start(t, kmstest.WithHSM(b), kmstest.WithConfig(func(c *config.Config) { c.Jobs.Enabled = false }))
	waitReady(t, srv, http.StatusOK)

	// Pull the token: another process deletes it, as an operator would.
	if out, err := exec.Command(util, "--delete-token", "--token", cfg.TokenLabel).CombinedOutput(); err != nil {
		t.Fatalf("delete token: %v %s", err, out)
	}
	start := time.Now()
	for readyz(t, srv) != http.StatusServiceUnavailable {
		if time.Since(start) > 3*time.Second { // 1s cache + probe, slack for a loaded CI
			t.Fatalf("/readyz still 200 %v after the token was deleted (cache window 1s)", time.Since(start))
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("/readyz 503 %v after the token was deleted", time.Since(start).Round(time.Millisecond))
	// It stays 503: the probe is not fooled by a cached success.
	for range 5 {
		time.Sleep(300 * time.Millisecond)
		if code := readyz(t, srv); code != http.StatusServiceUnavailable {
			t.Fatalf("/readyz %d with the token gone", code)
		}
	}
}
