package p11

import (
	"fmt"

	"github.com/miekg/pkcs11"
)

// InitToken initialises the token in the first slot of the module at
// modulePath that holds an uninitialised token, giving it label, the
// security officer PIN soPIN and the user PIN userPIN. It never touches an
// initialised token and fails with ErrTokenExists if label is taken and
// with ErrNoFreeSlot if there is no uninitialised token.
//
// It is meant for development and test setups (SoftHSM2 always offers one
// free slot); production tokens are initialised with the vendor's tools.
// Unlike softhsm2-util it runs inside this process, so Backends already
// open on the module can Open the new token without a re-initialise.
func InitToken(modulePath, label, soPIN, userPIN string) error {
	if label == "" || len(label) > 32 || soPIN == "" || userPIN == "" {
		return fmt.Errorf("%w: InitToken needs a label of 1-32 bytes and both PINs", ErrConfig)
	}
	m, err := acquireModule(modulePath)
	if err != nil {
		return err
	}
	defer releaseModule(m)
	m.gate.Lock() // exclusive: nothing else runs inside the module meanwhile
	defer m.gate.Unlock()
	if !m.ready {
		return fmt.Errorf("%w: module not initialised", ErrModule)
	}
	p := m.ctx
	slots, err := p.GetSlotList(true)
	if err != nil {
		return fmt.Errorf("p11: slot list: %w", err)
	}
	free, found := uint(0), false
	for _, s := range slots {
		ti, err := p.GetTokenInfo(s)
		if err != nil {
			continue
		}
		if ti.Flags&pkcs11.CKF_TOKEN_INITIALIZED == 0 {
			if !found {
				free, found = s, true
			}
			continue
		}
		if trimLabel(ti.Label) == label {
			return fmt.Errorf("%w: %q", ErrTokenExists, label)
		}
	}
	if !found {
		return ErrNoFreeSlot
	}
	if err := p.InitToken(free, soPIN, label); err != nil {
		return fmt.Errorf("p11: C_InitToken: %w", err)
	}
	s, err := p.OpenSession(free, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		return fmt.Errorf("p11: open session: %w", err)
	}
	defer p.CloseSession(s)
	if err := p.Login(s, pkcs11.CKU_SO, soPIN); err != nil {
		return fmt.Errorf("p11: SO login: %w", err)
	}
	defer p.Logout(s)
	if err := p.InitPIN(s, userPIN); err != nil {
		return fmt.Errorf("p11: C_InitPIN: %w", err)
	}
	return nil
}
