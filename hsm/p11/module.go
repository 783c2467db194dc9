package p11

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"

	"github.com/miekg/pkcs11"
)

// module is one loaded PKCS#11 library. Cryptoki state (initialisation,
// login, sessions) belongs to the process, so every Backend using the same
// library shares one module.
type module struct {
	key string
	ctx *pkcs11.Ctx

	// gate orders module calls against re-initialisation: every call into
	// the library holds gate.RLock; C_Finalize/C_Initialize hold gate.Lock,
	// so they never run while another goroutine is inside the library.
	gate sync.RWMutex
	// gen counts (re)initialisations; sessions opened under an older gen
	// are dead. ready is false while the library is finalized. Both are
	// written under gate.Lock and read under gate.RLock.
	gen   uint64
	ready bool

	refs int // guarded by modulesMu
}

var (
	modulesMu sync.Mutex
	modules   = map[string]*module{}
)

// acquireModule loads (once per process) and initialises the library at
// path and takes a reference on it.
func acquireModule(path string) (*module, error) {
	key := path
	if p, err := filepath.EvalSymlinks(path); err == nil {
		key = p
	}
	modulesMu.Lock()
	defer modulesMu.Unlock()
	m := modules[key]
	if m == nil {
		ctx := pkcs11.New(path)
		if ctx == nil {
			return nil, fmt.Errorf("%w: %s", ErrModule, path)
		}
		m = &module{key: key, ctx: ctx}
		modules[key] = m
	}
	if m.refs == 0 {
		m.gate.Lock()
		err := m.initLocked()
		m.gate.Unlock()
		if err != nil {
			return nil, fmt.Errorf("%w: C_Initialize: %w", ErrModule, err)
		}
	}
	m.refs++
	return m, nil
}

// releaseModule drops a reference; the last one finalizes the library. The
// library itself stays loaded: unloading and reloading crypto libraries in
// one process is a known source of crashes.
func releaseModule(m *module) {
	modulesMu.Lock()
	defer modulesMu.Unlock()
	m.refs--
	if m.refs > 0 {
		return
	}
	m.gate.Lock()
	if m.ready {
		_ = m.ctx.Finalize()
		m.ready = false
		m.gen++
	}
	m.gate.Unlock()
}

// initLocked runs C_Initialize. Caller holds gate.Lock.
func (m *module) initLocked() error {
	if m.ready {
		return nil
	}
	if err := m.ctx.Initialize(); err != nil && !hasCode(err, pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		return err
	}
	m.gen++
	m.ready = true
	return nil
}

// reinitLocked re-initialises the library unless somebody already did so
// since generation seen. Caller holds gate.Lock.
func (m *module) reinitLocked(seen uint64) error {
	if m.ready && m.gen != seen {
		return nil // another Backend re-initialised already
	}
	if m.ready {
		_ = m.ctx.Finalize()
		m.ready = false
		m.gen++
	}
	return m.initLocked()
}

// hasCode reports whether err carries the PKCS#11 return value code.
func hasCode(err error, code uint) bool {
	var pe pkcs11.Error
	return errors.As(err, &pe) && uint(pe) == code
}
