package p11

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/pkcs11"

	"github.com/kmsgo/kmsgo/hsm"
)

// Recovery backoff bounds.
const (
	minBackoff = 50 * time.Millisecond
	maxBackoff = 2 * time.Second
)

// Backend is the PKCS#11 implementation of hsm.Backend. Create it with Open.
type Backend struct {
	cfg Config
	mod *module
	log *slog.Logger

	sem      chan struct{} // one token per session in flight
	inUse    atomic.Int64
	waits    atomic.Uint64
	timeouts atomic.Uint64

	available atomic.Bool
	closed    atomic.Bool
	kick      chan struct{} // wakes the recovery goroutine (buffered, 1)
	done      chan struct{} // closed by Close
	wg        sync.WaitGroup

	// Written only under mod.gate.Lock, read under mod.gate.RLock.
	gen    uint64 // module generation our sessions belong to
	slot   uint
	anchor pkcs11.SessionHandle

	anchorMu sync.Mutex // Health probes on the anchor session one at a time

	idleMu sync.Mutex
	idle   []pkcs11.SessionHandle

	handles sync.Map // id -> pkcs11.ObjectHandle; cleared on every re-initialise

	// objLock (capacity 1) serialises the calls that create, destroy or
	// enumerate objects. It is taken before a pool slot, so callers queued
	// behind a slow C_GenerateKey do not sit on sessions that Encrypt needs.
	objLock chan struct{}
	// objMu keeps key use and look-up (RLock, see withKey) apart from
	// object creation, destruction and listing (Lock, see withObjects).
	// SoftHSM is not safe there: a C_GenerateKey beside a C_FindObjects
	// fails with CKR_GENERAL_ERROR, and a key used while being destroyed
	// gives arbitrary errors instead of CKR_OBJECT_HANDLE_INVALID.
	objMu sync.RWMutex

	// recoverHook, when set by tests, runs at the start of every recovery
	// attempt; an error fails the attempt.
	recoverHook func() error
}

var _ hsm.Backend = (*Backend)(nil)

// Open loads the module, logs in to the token labelled cfg.TokenLabel and
// makes sure the root key exists. Close the Backend when done.
func Open(cfg Config) (*Backend, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	m, err := acquireModule(cfg.ModulePath)
	if err != nil {
		return nil, err
	}
	b := &Backend{
		cfg:     cfg,
		mod:     m,
		log:     cfg.Logger.With("component", "hsm/p11", "token", cfg.TokenLabel),
		sem:     make(chan struct{}, cfg.PoolSize),
		objLock: make(chan struct{}, 1),
		kick:    make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
	m.gate.Lock()
	err = m.initLocked() // no-op unless a failed recovery left it finalized
	if err == nil {
		err = b.openLocked(true)
	}
	m.gate.Unlock()
	if err != nil {
		releaseModule(m)
		return nil, err
	}
	b.available.Store(true)
	b.wg.Add(1)
	go b.recoverLoop()
	if cfg.Deployment != "" {
		if err := b.BindDeployment(context.Background(), cfg.Deployment, cfg.AllowForeignRootKey); err != nil {
			_ = b.Close()
			return nil, err
		}
	}
	return b, nil
}

// openLocked finds the slot, opens and logs in the anchor session and finds
// (or, when create is set and allowed, generates) the root key. Caller holds
// mod.gate.Lock.
func (b *Backend) openLocked(create bool) error {
	m := b.mod
	b.gen = m.gen
	b.idleMu.Lock()
	b.idle = nil
	b.idleMu.Unlock()
	b.handles.Clear()

	slot, err := b.findSlot()
	if err != nil {
		return err
	}
	anchor, err := m.ctx.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		return fmt.Errorf("p11: open session: %w", err)
	}
	if err := m.ctx.Login(anchor, pkcs11.CKU_USER, b.cfg.PIN); err != nil && !hasCode(err, pkcs11.CKR_USER_ALREADY_LOGGED_IN) {
		_ = m.ctx.CloseSession(anchor)
		return fmt.Errorf("p11: login to token %q: %w", b.cfg.TokenLabel, err)
	}
	b.slot, b.anchor = slot, anchor
	if err := b.ensureRootKey(anchor, create); err != nil {
		_ = m.ctx.CloseSession(anchor)
		return err
	}
	return nil
}

func (b *Backend) ensureRootKey(anchor pkcs11.SessionHandle, create bool) error {
	h, err := b.findKey(anchor, b.cfg.RootKeyID)
	switch {
	case errors.Is(err, hsm.ErrKeyNotFound) && create && b.cfg.CreateRootKey:
		h, err = b.generate(anchor, b.cfg.RootKeyID, 256)
		if err != nil {
			return fmt.Errorf("p11: create root key: %w", err)
		}
		b.log.Info("created root key", "id", b.cfg.RootKeyID)
	case errors.Is(err, hsm.ErrKeyNotFound):
		return fmt.Errorf("%w: %q in token %q", ErrRootKeyMissing, b.cfg.RootKeyID, b.cfg.TokenLabel)
	case err != nil:
		return fmt.Errorf("p11: find root key: %w", err)
	}
	b.handles.Store(b.cfg.RootKeyID, h)
	return nil
}

func (b *Backend) findSlot() (uint, error) {
	ctx := b.mod.ctx
	slots, err := ctx.GetSlotList(true)
	if err != nil {
		return 0, fmt.Errorf("p11: slot list: %w", err)
	}
	var found []uint
	for _, s := range slots {
		ti, err := ctx.GetTokenInfo(s)
		if err != nil {
			continue
		}
		if trimLabel(ti.Label) == b.cfg.TokenLabel {
			found = append(found, s)
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return 0, fmt.Errorf("%w: no token labelled %q", ErrTokenNotFound, b.cfg.TokenLabel)
	default:
		return 0, fmt.Errorf("%w: %d tokens labelled %q", ErrTokenNotFound, len(found), b.cfg.TokenLabel)
	}
}

func trimLabel(s string) string {
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == 0) {
		s = s[:len(s)-1]
	}
	return s
}

// with runs fn on a pooled session: it waits for a pool slot (bounded),
// holds the module gate for reading, and hands fn a session no other
// goroutine uses. Errors from fn that mean the HSM is gone flip the Backend
// to unavailable and are returned wrapped in hsm.ErrUnavailable.
func (b *Backend) with(ctx context.Context, op string, fn func(s pkcs11.SessionHandle) error) error {
	if b.closed.Load() {
		return hsm.ErrClosed
	}
	if !b.available.Load() {
		return unavailable(op, nil)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := b.acquire(ctx); err != nil {
		return err
	}
	defer b.release()

	m := b.mod
	m.gate.RLock()
	defer m.gate.RUnlock()
	if b.closed.Load() {
		return hsm.ErrClosed
	}
	if !b.available.Load() {
		return unavailable(op, nil)
	}
	if b.gen != m.gen || !m.ready {
		err := errors.New("module was re-initialised")
		b.fault(op, err)
		return unavailable(op, err)
	}
	s, err := b.session()
	if err != nil {
		return b.classify(op, fmt.Errorf("open session: %w", err))
	}
	err = fn(s)
	switch {
	case err == nil, errors.Is(err, hsm.ErrKeyNotFound), errors.Is(err, hsm.ErrKeyExists),
		errors.Is(err, hsm.ErrInvalidArgument), errors.Is(err, ErrDuplicateKey):
		b.putSession(s) // no PKCS#11 operation left half-done
		return err
	case isFault(err):
		return b.classify(op, err) // the session dies with the module
	default:
		// A failed operation may leave state behind on some modules; do
		// not lend this session again.
		_ = m.ctx.CloseSession(s)
		return b.classify(op, err)
	}
}

func (b *Backend) acquire(ctx context.Context) error {
	select {
	case b.sem <- struct{}{}:
		b.inUse.Add(1)
		return nil
	default:
	}
	b.waits.Add(1)
	t := time.NewTimer(b.cfg.AcquireTimeout)
	defer t.Stop()
	select {
	case b.sem <- struct{}{}:
		b.inUse.Add(1)
		return nil
	case <-t.C:
		if err := ctx.Err(); err != nil {
			return err // both expired; the caller's deadline explains more
		}
		b.timeouts.Add(1)
		return hsm.ErrBusy
	case <-ctx.Done():
		return ctx.Err()
	case <-b.done:
		return hsm.ErrClosed
	}
}

// withObjects is with() for calls that create, destroy or list objects:
// one at a time per Backend, and never beside a key in use (objMu).
func (b *Backend) withObjects(ctx context.Context, op string, fn func(s pkcs11.SessionHandle) error) error {
	if b.closed.Load() {
		return hsm.ErrClosed
	}
	if !b.available.Load() {
		return unavailable(op, nil)
	}
	select {
	case b.objLock <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	case <-b.done:
		return hsm.ErrClosed
	}
	defer func() { <-b.objLock }()
	return b.with(ctx, op, func(s pkcs11.SessionHandle) error {
		b.objMu.Lock()
		err := fn(s)
		b.objMu.Unlock()
		if hasCode(err, pkcs11.CKR_GENERAL_ERROR) {
			// SoftHSM says GENERAL_ERROR when object operations race
			// with other sessions (other processes included). That is
			// no proof of a dead device; a real fault shows up on the
			// next call, so do not re-initialise the module for it.
			return fmt.Errorf("p11: %s: %v", op, err)
		}
		return err
	})
}

func (b *Backend) release() {
	b.inUse.Add(-1)
	<-b.sem
}

// session pops an idle session or opens a new one. Caller holds gate.RLock
// and a pool slot, so at most PoolSize sessions exist.
func (b *Backend) session() (pkcs11.SessionHandle, error) {
	b.idleMu.Lock()
	if n := len(b.idle); n > 0 {
		s := b.idle[n-1]
		b.idle = b.idle[:n-1]
		b.idleMu.Unlock()
		return s, nil
	}
	b.idleMu.Unlock()
	return b.mod.ctx.OpenSession(b.slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
}

func (b *Backend) putSession(s pkcs11.SessionHandle) {
	b.idleMu.Lock()
	b.idle = append(b.idle, s)
	b.idleMu.Unlock()
}

// faultCodes are PKCS#11 return values that mean the token, the login or the
// module state is gone; only a re-initialise recovers from them.
var faultCodes = map[uint]bool{
	pkcs11.CKR_GENERAL_ERROR:            true,
	pkcs11.CKR_DEVICE_ERROR:             true,
	pkcs11.CKR_DEVICE_MEMORY:            true,
	pkcs11.CKR_DEVICE_REMOVED:           true,
	pkcs11.CKR_SESSION_HANDLE_INVALID:   true,
	pkcs11.CKR_SESSION_CLOSED:           true,
	pkcs11.CKR_CRYPTOKI_NOT_INITIALIZED: true,
	pkcs11.CKR_USER_NOT_LOGGED_IN:       true,
	pkcs11.CKR_TOKEN_NOT_PRESENT:        true,
	pkcs11.CKR_TOKEN_NOT_RECOGNIZED:     true,
	pkcs11.CKR_SLOT_ID_INVALID:          true,
}

func isFault(err error) bool {
	var pe pkcs11.Error
	return errors.As(err, &pe) && faultCodes[uint(pe)]
}

// classify turns fault errors into hsm.ErrUnavailable (and starts recovery);
// other errors are returned with the operation name.
func (b *Backend) classify(op string, err error) error {
	if isFault(err) {
		b.fault(op, err)
		return unavailable(op, err)
	}
	if errors.Is(err, hsm.ErrDecrypt) {
		return hsm.ErrDecrypt // one opaque error, no detail
	}
	if hasCode(err, pkcs11.CKR_SESSION_COUNT) {
		return fmt.Errorf("%w: %s: %v", hsm.ErrBusy, op, err)
	}
	var pe pkcs11.Error
	if errors.As(err, &pe) {
		return fmt.Errorf("p11: %s: %w", op, err)
	}
	return err
}

func unavailable(op string, cause error) error {
	if cause == nil {
		return fmt.Errorf("%w: %s: recovering", hsm.ErrUnavailable, op)
	}
	return fmt.Errorf("%w: %s: %v", hsm.ErrUnavailable, op, cause)
}

// fault marks the Backend unavailable and wakes the recovery goroutine once.
func (b *Backend) fault(op string, err error) {
	if b.available.CompareAndSwap(true, false) {
		b.log.Warn("HSM unavailable, recovering in the background", "op", op, "err", err)
		select {
		case b.kick <- struct{}{}:
		default:
		}
	}
}

// recoverLoop is the one goroutine that brings the Backend back after a fault.
func (b *Backend) recoverLoop() {
	defer b.wg.Done()
	for {
		select {
		case <-b.done:
			return
		case <-b.kick:
		}
		delay := minBackoff
		for attempt := 1; ; attempt++ {
			err := b.reopen()
			if err == nil {
				b.available.Store(true)
				b.log.Info("HSM available again", "attempts", attempt)
				break
			}
			if b.closed.Load() {
				return
			}
			if hasCode(err, pkcs11.CKR_PIN_INCORRECT) || hasCode(err, pkcs11.CKR_PIN_LOCKED) {
				// Retrying a wrong PIN would lock the token.
				b.log.Error("HSM recovery stopped: PIN rejected; restart with a valid PIN", "err", err)
				return
			}
			b.log.Warn("HSM recovery attempt failed", "attempt", attempt, "retry_in", delay, "err", err)
			t := time.NewTimer(delay)
			select {
			case <-b.done:
				t.Stop()
				return
			case <-t.C:
			}
			delay = min(2*delay, maxBackoff)
		}
	}
}

// reopen re-initialises the module (unless another Backend just did) and
// reopens this Backend's login and root key. No call is in flight meanwhile:
// they all hold gate.RLock.
func (b *Backend) reopen() error {
	m := b.mod
	m.gate.Lock()
	defer m.gate.Unlock()
	if b.closed.Load() {
		return hsm.ErrClosed
	}
	b.idleMu.Lock()
	b.idle = nil // their handles died with the module
	b.idleMu.Unlock()
	b.handles.Clear()
	if b.recoverHook != nil {
		if err := b.recoverHook(); err != nil {
			return err
		}
	}
	if err := m.reinitLocked(b.gen); err != nil {
		return fmt.Errorf("C_Initialize: %w", err)
	}
	return b.openLocked(false)
}

// Health reports whether the Backend can serve requests: it fails fast while
// recovering and otherwise probes the anchor session's login state.
func (b *Backend) Health(ctx context.Context) error {
	if b.closed.Load() {
		return hsm.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if !b.available.Load() {
		return unavailable("health", nil)
	}
	m := b.mod
	m.gate.RLock()
	defer m.gate.RUnlock()
	if b.gen != m.gen || !m.ready {
		err := errors.New("module was re-initialised")
		b.fault("health", err)
		return unavailable("health", err)
	}
	b.anchorMu.Lock()
	info, err := m.ctx.GetSessionInfo(b.anchor)
	b.anchorMu.Unlock()
	if err == nil && !loggedIn(info) {
		err = pkcs11.Error(pkcs11.CKR_USER_NOT_LOGGED_IN)
	}
	if err != nil {
		if !isFault(err) {
			err = fmt.Errorf("%w (%w)", pkcs11.Error(pkcs11.CKR_DEVICE_ERROR), err)
		}
		return b.classify("health", err)
	}
	return nil
}

func loggedIn(info pkcs11.SessionInfo) bool {
	return info.State == pkcs11.CKS_RW_USER_FUNCTIONS || info.State == pkcs11.CKS_RO_USER_FUNCTIONS
}

// Stats reports session-pool figures.
func (b *Backend) Stats() hsm.Stats {
	return hsm.Stats{
		Size:      b.cfg.PoolSize,
		InUse:     int(b.inUse.Load()),
		Waits:     b.waits.Load(),
		Timeouts:  b.timeouts.Load(),
		Available: b.available.Load() && !b.closed.Load(),
	}
}

// Close waits for calls in flight, closes every session and releases the
// module. Later calls fail with hsm.ErrClosed.
func (b *Backend) Close() error {
	if !b.closed.CompareAndSwap(false, true) {
		return nil
	}
	close(b.done)
	b.wg.Wait()
	m := b.mod
	m.gate.Lock()
	if b.gen == m.gen && m.ready {
		b.idleMu.Lock()
		for _, s := range b.idle {
			_ = m.ctx.CloseSession(s)
		}
		b.idle = nil
		b.idleMu.Unlock()
		_ = m.ctx.CloseSession(b.anchor)
	}
	b.handles.Clear()
	m.gate.Unlock()
	releaseModule(m)
	return nil
}
