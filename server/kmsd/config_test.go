package kmsd

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/kmsgo/kmsgo/server/config"
)

func TestChainKeyFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "chain.key")
	k1, err := LoadOrCreateChainKey(p)
	if err != nil || len(k1) != 32 {
		t.Fatalf("create: %v %d", err, len(k1))
	}
	fi, _ := os.Stat(p)
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode().Perm())
	}
	k2, err := LoadOrCreateChainKey(p)
	if err != nil || !bytes.Equal(k1, k2) {
		t.Fatal("key not stable across loads")
	}
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateChainKey(p); !errors.Is(err, config.ErrInsecureFile) {
		t.Fatalf("world-readable key accepted: %v", err)
	}
	short := filepath.Join(dir, "short.key")
	if err := os.WriteFile(short, []byte("c2hvcnQ=\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateChainKey(short); !errors.Is(err, config.ErrInvalid) {
		t.Fatalf("short key accepted: %v", err)
	}
}
