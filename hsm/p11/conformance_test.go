package p11_test

import (
	"testing"

	"github.com/kmsgo/kmsgo/hsm"
	"github.com/kmsgo/kmsgo/hsm/hsmtest"
	"github.com/kmsgo/kmsgo/hsm/p11"
	"github.com/kmsgo/kmsgo/hsm/p11/softhsmtest"
)

// TestConformance runs the shared hsm.Backend suite on SoftHSM2. All
// backends of the run share one token, as replicas share one HSM.
func TestConformance(t *testing.T) {
	cfg := softhsmtest.New(t)
	hsmtest.Run(t, func(t *testing.T) hsm.Backend {
		b, err := p11.Open(cfg)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		t.Cleanup(func() { _ = b.Close() })
		return b
	})
}
