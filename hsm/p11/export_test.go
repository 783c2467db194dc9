package p11

import (
	"context"
	"fmt"

	"github.com/miekg/pkcs11"
)

// Test hooks. They live in a _test.go file, so they are not part of the API.

// Fault kinds for InjectFault.
const (
	FaultFinalize      = "finalize"       // C_Finalize: the module forgets everything
	FaultLogout        = "logout"         // C_Logout: sessions stay, the login is gone
	FaultCloseSessions = "close-sessions" // C_CloseAllSessions on the token's slot
)

// InjectFault makes the HSM "vanish" under the Backend. It holds the module
// gate so no call is inside SoftHSM at that instant: a real HSM going away
// does not free memory inside our process, but SoftHSM's in-process state
// would, and that would test SoftHSM's thread safety, not our recovery.
func InjectFault(b *Backend, kind string) error {
	m := b.mod
	m.gate.Lock()
	defer m.gate.Unlock()
	switch kind {
	case FaultFinalize:
		return m.ctx.Finalize()
	case FaultLogout:
		return m.ctx.Logout(b.anchor)
	case FaultCloseSessions:
		return m.ctx.CloseAllSessions(b.slot)
	}
	return fmt.Errorf("unknown fault %q", kind)
}

// SetRecoverHook installs fn to run at the start of every recovery attempt;
// an error from fn fails the attempt (the HSM is "still gone").
func SetRecoverHook(b *Backend, fn func() error) {
	b.mod.gate.Lock()
	b.recoverHook = fn
	b.mod.gate.Unlock()
}

// Raw gives tests the module context and the token's slot, for checks and
// benchmarks that talk PKCS#11 directly. Sessions opened on it share the
// process-wide login of the Backend.
func Raw(b *Backend) (*pkcs11.Ctx, uint) {
	return b.mod.ctx, b.slot
}

// HoldSession borrows one pool session and keeps it until release is
// called. It returns once the session is held.
func HoldSession(b *Backend) (release func(), err error) {
	held := make(chan struct{})
	done := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		errc <- b.with(context.Background(), "hold", func(pkcs11.SessionHandle) error {
			close(held)
			<-done
			return nil
		})
	}()
	select {
	case <-held:
		return func() { close(done); <-errc }, nil
	case err := <-errc:
		return nil, err
	}
}

// BoolAttr reads a boolean attribute of key id.
func BoolAttr(b *Backend, id string, attr uint) (bool, error) {
	var v bool
	err := b.with(context.Background(), "test attr", func(s pkcs11.SessionHandle) error {
		h, err := b.findKey(s, id)
		if err != nil {
			return err
		}
		attrs, err := b.mod.ctx.GetAttributeValue(s, h, []*pkcs11.Attribute{pkcs11.NewAttribute(attr, nil)})
		if err != nil {
			return err
		}
		if len(attrs) != 1 || len(attrs[0].Value) != 1 {
			return fmt.Errorf("attribute %#x: %v", attr, attrs)
		}
		v = attrs[0].Value[0] != 0
		return nil
	})
	return v, err
}
