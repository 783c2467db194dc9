package softhsmtest_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/kmsgo/kmsgo/hsm"
	"github.com/kmsgo/kmsgo/hsm/p11"
	"github.com/kmsgo/kmsgo/hsm/p11/softhsmtest"
)

func TestNewGivesDistinctWorkingTokens(t *testing.T) {
	a, b := softhsmtest.New(t), softhsmtest.New(t)
	if a.TokenLabel == b.TokenLabel || a.PIN == b.PIN {
		t.Fatalf("two tokens share a label or PIN: %q/%q", a.TokenLabel, b.TokenLabel)
	}
	if len(a.TokenLabel) > 32 {
		t.Errorf("label %q is longer than PKCS#11's 32 bytes", a.TokenLabel)
	}
	if !a.CreateRootKey || a.RootKeyID != hsm.RootKeyID {
		t.Errorf("Config = %+v; want CreateRootKey and the default root key id", a)
	}
	ba := softhsmtest.Backend(t)
	if err := ba.Health(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Keys in one token are invisible in another.
	pa, err := p11.Open(a)
	if err != nil {
		t.Fatal(err)
	}
	defer pa.Close()
	pb, err := p11.Open(b)
	if err != nil {
		t.Fatal(err)
	}
	defer pb.Close()
	if err := pa.GenerateKey(context.Background(), "only-in-a", 128); err != nil {
		t.Fatal(err)
	}
	if _, err := pb.Encrypt(context.Background(), "only-in-a", []byte("x"), nil); !errors.Is(err, hsm.ErrKeyNotFound) {
		t.Errorf("key of token a visible in token b: %v", err)
	}
	if conf := os.Getenv("SOFTHSM2_CONF"); !strings.Contains(conf, "kmsgo-softhsm-") {
		t.Errorf("SOFTHSM2_CONF = %q, want the per-process config", conf)
	}
}

func TestModulePath(t *testing.T) {
	tests := []struct {
		name    string
		env     string
		wantErr bool
	}{
		{"default search", "", false},
		{"explicit module", "/usr/lib/softhsm/libsofthsm2.so", false},
		{"missing module", "/nonexistent/libsofthsm2.so", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(softhsmtest.ModuleEnv, tc.env)
			p, err := softhsmtest.ModulePath()
			if (err != nil) != tc.wantErr {
				t.Fatalf("ModulePath() = %q, %v", p, err)
			}
			if err == nil {
				if _, serr := os.Stat(p); serr != nil {
					t.Errorf("ModulePath() = %q which does not exist", p)
				}
			}
		})
	}
	if !strings.Contains(softhsmtest.ErrNotInstalled.Error(), "apt-get install -y softhsm2") {
		t.Errorf("ErrNotInstalled = %q lacks the install hint", softhsmtest.ErrNotInstalled)
	}
}

// ExampleNewToken makes a token without a testing.TB, as examples and
// TestMain functions need.
func ExampleNewToken() {
	cfg, cleanup, err := softhsmtest.NewToken()
	if err != nil {
		fmt.Println(err) // "install SoftHSM2: apt-get install -y softhsm2"
		return
	}
	defer cleanup()
	b, err := p11.Open(cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer b.Close()
	r, err := b.Random(context.Background(), 16)
	fmt.Println(len(r), err)
	// Output: 16 <nil>
}
