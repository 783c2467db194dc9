package softhsmtest

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/kmsgo/kmsgo/hsm"
	"github.com/kmsgo/kmsgo/hsm/p11"
)

// ModuleEnv names the environment variable that overrides the module path.
const ModuleEnv = "KMS_PKCS11_MODULE"

// InstallHint is the message tests fail with when SoftHSM2 is missing.
const InstallHint = "install SoftHSM2: apt-get install -y softhsm2"

var modulePaths = []string{
	"/usr/lib/softhsm/libsofthsm2.so",
	"/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
	"/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
	"/usr/local/lib/softhsm/libsofthsm2.so",
}

// ModulePath returns $KMS_PKCS11_MODULE if set, else the first SoftHSM2
// module found in the usual places, else ErrNotInstalled.
func ModulePath() (string, error) {
	if p := os.Getenv(ModuleEnv); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s=%s: %w", ModuleEnv, p, err)
		}
		return p, nil
	}
	for _, p := range modulePaths {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", ErrNotInstalled
}

var (
	confOnce sync.Once
	confDir  string
	confErr  error
	counter  atomic.Uint64
)

// setup writes one softhsm2.conf with one token directory for this process
// and points SOFTHSM2_CONF at it. SoftHSM reads the file at C_Initialize.
func setup() (string, error) {
	confOnce.Do(func() {
		sweepStale()
		dir, err := os.MkdirTemp("", fmt.Sprintf("%s%d-", dirPrefix, os.Getpid()))
		if err != nil {
			confErr = err
			return
		}
		tokens := filepath.Join(dir, "tokens")
		if err := os.Mkdir(tokens, 0o700); err != nil {
			confErr = err
			return
		}
		conf := filepath.Join(dir, "softhsm2.conf")
		body := fmt.Sprintf("directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n", tokens)
		if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
			confErr = err
			return
		}
		confErr = os.Setenv("SOFTHSM2_CONF", conf)
		confDir = dir
	})
	return confDir, confErr
}

const dirPrefix = "kmsgo-softhsm-"

// sweepStale removes token directories left behind by test processes that
// have exited (SoftHSM keeps writing to a token's directory until the
// process finalizes the module, so a process cannot fully clean up after
// itself).
func sweepStale() {
	entries, _ := os.ReadDir(os.TempDir())
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), dirPrefix)
		if !ok || !e.IsDir() {
			continue
		}
		pidStr, _, ok := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidStr)
		if !ok || err != nil || pid <= 0 {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			_ = os.RemoveAll(filepath.Join(os.TempDir(), e.Name()))
		}
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// NewToken creates a fresh token and returns its Config (CreateRootKey set,
// root key id hsm.RootKeyID) and a cleanup that deletes the token. It is
// the building block of New for code without a testing.TB (examples,
// TestMain); it returns ErrNotInstalled when SoftHSM2 is missing.
func NewToken() (p11.Config, func(), error) {
	module, err := ModulePath()
	if err != nil {
		return p11.Config{}, nil, err
	}
	if _, err := setup(); err != nil {
		return p11.Config{}, nil, fmt.Errorf("softhsmtest: config: %w", err)
	}
	label := fmt.Sprintf("kmsgo-%d-%d-%s", os.Getpid()%100000, counter.Add(1), randomHex(3))
	pin := randomHex(8)
	// In-process C_InitToken: tokens made by softhsm2-util after the
	// module was initialised would stay invisible to this process.
	if err := p11.InitToken(module, label, randomHex(8), pin); err != nil {
		return p11.Config{}, nil, fmt.Errorf("softhsmtest: init token: %w", err)
	}
	cleanup := func() {
		if util, err := exec.LookPath("softhsm2-util"); err == nil {
			_ = exec.Command(util, "--delete-token", "--token", label).Run()
		}
	}
	cfg := p11.Config{
		ModulePath:    module,
		TokenLabel:    label,
		PIN:           pin,
		RootKeyID:     hsm.RootKeyID,
		CreateRootKey: true,
		// Faults and recoveries are worth seeing in test output; routine
		// events (root key created) are not.
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	return cfg, cleanup, nil
}

// New creates a private token for t, deleted when t ends, and returns a
// Config for p11.Open. It fails t (never skips) when SoftHSM2 is missing.
func New(t testing.TB) p11.Config {
	t.Helper()
	cfg, cleanup, err := NewToken()
	if err != nil {
		t.Fatalf("softhsmtest: %v", err)
	}
	t.Cleanup(cleanup)
	return cfg
}

// Backend opens a p11.Backend on a private token (see New), closed when t
// ends.
func Backend(t testing.TB) *p11.Backend {
	t.Helper()
	b, err := p11.Open(New(t))
	if err != nil {
		t.Fatalf("softhsmtest: open: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}
