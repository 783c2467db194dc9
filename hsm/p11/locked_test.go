package p11_test

import (
	"context"
	"testing"

	"github.com/miekg/pkcs11"

	"github.com/kmsgo/kmsgo/hsm/p11"
	"github.com/kmsgo/kmsgo/hsm/p11/softhsmtest"
)

// TestKeysAreUnmodifiableAndUncopyable: generated, imported and root keys
// read back CKA_MODIFIABLE and CKA_COPYABLE false on SoftHSM2, which
// supports both (on tokens that do not, keys are created without them).
func TestKeysAreUnmodifiableAndUncopyable(t *testing.T) {
	b := softhsmtest.Backend(t)
	ctx := context.Background()
	if err := b.GenerateKey(ctx, "gen", 256); err != nil {
		t.Fatal(err)
	}
	if err := b.ImportKey(ctx, "imp", make([]byte, 32)); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"gen", "imp", "kmsgo-root"} {
		for name, attr := range map[string]uint{"CKA_MODIFIABLE": pkcs11.CKA_MODIFIABLE, "CKA_COPYABLE": pkcs11.CKA_COPYABLE} {
			v, err := p11.BoolAttr(b, id, attr)
			if err != nil || v {
				t.Errorf("%s %s = %v, %v; want false", id, name, v, err)
			}
		}
	}
}
