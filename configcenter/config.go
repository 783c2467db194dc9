package configcenter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of Options.
const (
	DefaultDecryptTimeout = 30 * time.Second
	DefaultRetryInterval  = time.Second
	// maxRetryInterval caps the backoff between retries of a change that
	// failed because kmsd was unavailable, and between restarts of a
	// source's Watch.
	maxRetryInterval = 30 * time.Second
)

// Options configure New. Sources is required; Decrypter is required as
// soon as the configuration holds an ENC value.
type Options struct {
	// Sources are read in order; a later source wins over an earlier one
	// for the same path. New takes ownership: Close closes them.
	Sources []Source
	// Decrypter decrypts ENC values: a *kmsclient.Client or, better for a
	// fleet, a *kmsclient.Cached.
	Decrypter Decrypter
	// Marker delimits encrypted values; the zero value is ENC( and ).
	Marker Marker
	// EmbeddedMarkers also decrypts markers inside longer strings
	// ("jdbc:mysql://u:ENC(...)@db/app"). Off by default: only a value
	// that is exactly one marker is decrypted.
	EmbeddedMarkers bool
	// EncryptionContext is sent with every decryption; it must match the
	// --context given to `kmsctl enc`.
	EncryptionContext map[string]string
	// OnError receives every problem after start-up: a change that could
	// not be applied (the previous snapshot stays active) or a source
	// error the source recovers from. It is called on the Config's own
	// goroutine and must not block for long or call Close.
	OnError func(error)
	// Logger receives one line per such problem (never a value). Default
	// slog.Default().
	Logger *slog.Logger
	// DecryptTimeout bounds one decryption round (all batches of a
	// change). Default 30s.
	DecryptTimeout time.Duration
	// RetryInterval is the first delay before a change rejected because
	// kmsd was unavailable is tried again; it doubles up to 30s. Default 1s.
	RetryInterval time.Duration
}

// Stats are counters since New, for metrics (for example as Prometheus
// CounterFuncs).
type Stats struct {
	// Reloads counts changes applied after start-up.
	Reloads uint64
	// ReloadErrors counts changes rejected (the last good snapshot kept).
	ReloadErrors uint64
	// SourceErrors counts errors sources reported and recovered from.
	SourceErrors uint64
	// DecryptRequests counts DecryptBatch calls (each may be several
	// HTTP requests of at most kmsclient.MaxBatchItems items).
	DecryptRequests uint64
	// Decrypted counts ciphertexts sent to DecryptBatch.
	Decrypted uint64
	// CacheHits counts ciphertexts served from the cache of the active
	// snapshot instead.
	CacheHits uint64
}

type counters struct {
	reloads, reloadErrors, sourceErrors, decryptCalls, decrypted, cacheHits atomic.Uint64
}

// Config is a live, decrypted configuration: the current Snapshot, swapped
// atomically on each change, plus change callbacks. Safe for concurrent use.
type Config struct {
	opts  Options
	log   *slog.Logger
	cur   atomic.Pointer[Snapshot]
	res   *resolver
	stats counters

	mu     sync.Mutex // guards states and gen
	states []State
	gen    uint64
	kick   chan struct{}

	subMu  sync.Mutex
	subs   map[uint64]subscription
	nextID uint64

	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

type subscription struct {
	path string // "" with all: every change
	all  bool
	fn   func(old, new *Snapshot)
}

// New loads every source, decrypts every ENC value and returns a Config
// that follows later changes until Close. ctx bounds the start-up only.
//
// It fails closed: an unparsable document, a malformed marker or a value
// kmsd will not decrypt makes New return an error naming the source or
// config path and the reason (a *PathError), never the value. The sources
// are closed when New fails.
func New(ctx context.Context, opts Options) (*Config, error) {
	if len(opts.Sources) == 0 {
		return nil, ErrNoSources
	}
	for i, s := range opts.Sources {
		if s == nil {
			return nil, fmt.Errorf("%w: Sources[%d] is nil", ErrBadOptions, i)
		}
	}
	m := opts.Marker.orDefault()
	if m.Prefix == "" {
		return nil, fmt.Errorf("%w: empty Marker.Prefix", ErrBadOptions)
	}
	if opts.DecryptTimeout <= 0 {
		opts.DecryptTimeout = DefaultDecryptTimeout
	}
	if opts.RetryInterval <= 0 {
		opts.RetryInterval = DefaultRetryInterval
	}
	c := &Config{
		opts:   opts,
		log:    opts.Logger,
		states: make([]State, len(opts.Sources)),
		kick:   make(chan struct{}, 1),
		subs:   map[uint64]subscription{},
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	c.res = &resolver{dec: opts.Decrypter, marker: m, embedded: opts.EmbeddedMarkers,
		encCtx: opts.EncryptionContext, cache: map[string]string{}, stats: &c.stats}

	fail := func(err error) (*Config, error) {
		for _, s := range opts.Sources {
			_ = s.Close()
		}
		return nil, err
	}
	for i, s := range opts.Sources {
		st, err := s.Load(ctx)
		if err != nil {
			return fail(fmt.Errorf("configcenter: load %s: %w", s.Name(), err))
		}
		c.states[i] = st
	}
	snap, next, err := c.build(ctx, c.states)
	if err != nil {
		return fail(fmt.Errorf("configcenter: start-up: %w", err))
	}
	c.cur.Store(snap)
	c.res.cache = next

	c.ctx, c.cancel = context.WithCancel(context.Background())
	for i, s := range opts.Sources {
		c.wg.Add(1)
		go c.watchSource(i, s)
	}
	c.wg.Add(1)
	go c.applyLoop()
	return c, nil
}

// build merges states, decrypts and returns the new snapshot and the
// ciphertext cache that goes with it.
func (c *Config) build(ctx context.Context, states []State) (*Snapshot, map[string]string, error) {
	raw, err := mergeStates(states)
	if err != nil {
		return nil, nil, err
	}
	dctx, cancel := context.WithTimeout(ctx, c.opts.DecryptTimeout)
	defer cancel()
	next, err := c.res.resolve(dctx, raw)
	if err != nil {
		return nil, nil, err
	}
	revs := make([]string, len(states))
	for i, st := range states {
		revs[i] = st.Revision
	}
	snap, err := newSnapshot(raw, revs)
	if err != nil {
		return nil, nil, err
	}
	return snap, next, nil
}

// watchSource runs one source's Watch until Close, restarting it with a
// backoff if it returns early.
func (c *Config) watchSource(i int, s Source) {
	defer c.wg.Done()
	delay := c.opts.RetryInterval
	onChange := func(st State) {
		c.mu.Lock()
		c.states[i] = st
		c.gen++
		c.mu.Unlock()
		select {
		case c.kick <- struct{}{}:
		default:
		}
	}
	onError := func(err error) {
		if c.ctx.Err() != nil {
			return
		}
		c.stats.sourceErrors.Add(1)
		c.report("configcenter: source error (recovering)", fmt.Errorf("configcenter: source %s: %w", s.Name(), err))
	}
	for {
		err := s.Watch(c.ctx, onChange, onError)
		if c.ctx.Err() != nil {
			return
		}
		if err == nil {
			err = errors.New("watch stopped")
		}
		onError(err)
		t := time.NewTimer(delay)
		select {
		case <-c.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		delay = min(2*delay, maxRetryInterval)
	}
}

// applyLoop applies the newest states after each change, and retries a
// change that failed because kmsd was unavailable.
func (c *Config) applyLoop() {
	defer c.wg.Done()
	var applied uint64 // generation of the active snapshot (0: start-up)
	delay := c.opts.RetryInterval
	var retry <-chan time.Time
	var timer *time.Timer
	for {
		select {
		case <-c.ctx.Done():
			if timer != nil {
				timer.Stop()
			}
			return
		case <-c.kick:
		case <-retry:
			retry = nil
		}
		c.mu.Lock()
		gen := c.gen
		states := append([]State(nil), c.states...)
		c.mu.Unlock()
		if gen == applied {
			continue
		}
		err := c.apply(states)
		if c.ctx.Err() != nil {
			return
		}
		if err == nil {
			applied = gen
			delay = c.opts.RetryInterval
			if timer != nil {
				timer.Stop()
				retry = nil
			}
			continue
		}
		c.stats.reloadErrors.Add(1)
		err = fmt.Errorf("configcenter: reload: %w", err)
		c.report("configcenter: change rejected; keeping the last good configuration", err)
		if timer != nil {
			timer.Stop()
			retry = nil
		}
		if errors.Is(err, ErrKMSUnavailable) {
			timer = time.NewTimer(delay)
			retry = timer.C
			delay = min(2*delay, maxRetryInterval)
		}
	}
}

// apply builds a snapshot from states, swaps it in and runs the callbacks.
func (c *Config) apply(states []State) error {
	snap, next, err := c.build(c.ctx, states)
	if err != nil {
		return err
	}
	// Only this goroutine stores snapshots, so Load then Store is a swap.
	old := c.cur.Load()
	same := reflect.DeepEqual(old.k.Raw(), snap.k.Raw())
	if !same {
		c.stats.reloads.Add(1) // counted before the snapshot is visible
	}
	c.cur.Store(snap)
	c.res.cache = next
	if !same {
		c.notify(old, snap)
	}
	return nil
}

func (c *Config) notify(old, snap *Snapshot) {
	c.subMu.Lock()
	subs := make([]subscription, 0, len(c.subs))
	ids := make([]uint64, 0, len(c.subs))
	for id := range c.subs {
		ids = append(ids, id)
	}
	slices.Sort(ids) // registration order
	for _, id := range ids {
		subs = append(subs, c.subs[id])
	}
	c.subMu.Unlock()
	for _, s := range subs {
		if !s.all && !changed(old, snap, s.path) {
			continue
		}
		c.call(s.fn, old, snap)
	}
}

// call runs one callback; a panic is reported, not propagated, so that
// one bad callback does not stop the updates.
func (c *Config) call(fn func(old, new *Snapshot), old, snap *Snapshot) {
	defer func() {
		if r := recover(); r != nil {
			c.report("configcenter: callback panicked", fmt.Errorf("configcenter: change callback panicked (%T)", r))
		}
	}()
	fn(old, snap)
}

func (c *Config) report(msg string, err error) {
	c.log.Error(msg, "err", err.Error())
	if c.opts.OnError != nil {
		c.opts.OnError(err)
	}
}

func (c *Config) subscribe(s subscription) (cancel func()) {
	c.subMu.Lock()
	c.nextID++
	id := c.nextID
	c.subs[id] = s
	c.subMu.Unlock()
	return func() {
		c.subMu.Lock()
		delete(c.subs, id)
		c.subMu.Unlock()
	}
}

// Snapshot returns the active snapshot. Hold on to it for a consistent
// view across several reads.
func (c *Config) Snapshot() *Snapshot { return c.cur.Load() }

// Bind decodes the active snapshot into out (see Snapshot.Bind).
func (c *Config) Bind(out any) error { return c.cur.Load().Bind(out) }

// OnChange calls fn with the old and new snapshot after every change that
// alters the configuration. Callbacks run one at a time, in registration
// order, on the Config's goroutine, after the new snapshot is active; they
// must not call Close. The returned function unregisters fn.
func (c *Config) OnChange(fn func(old, new *Snapshot)) (cancel func()) {
	return c.subscribe(subscription{all: true, fn: fn})
}

// Watch is OnChange restricted to changes of the value or subtree at path
// (added, removed or modified).
func (c *Config) Watch(path string, fn func(old, new *Snapshot)) (cancel func()) {
	return c.subscribe(subscription{path: path, fn: fn})
}

// WatchAs calls fn with the old and new value at path decoded into T (a
// bound struct, a string, an int, ...) whenever that value or subtree
// changes; path "" is the whole configuration. A value that does not
// decode into T is reported to Options.OnError instead.
func WatchAs[T any](c *Config, path string, fn func(oldValue, newValue T)) (cancel func()) {
	return c.Watch(path, func(old, snap *Snapshot) {
		var o, n T
		if err := old.BindPath(path, &o); err != nil {
			c.report("configcenter: watch decode failed", err)
			return
		}
		if err := snap.BindPath(path, &n); err != nil {
			c.report("configcenter: watch decode failed", err)
			return
		}
		fn(o, n)
	})
}

// Stats returns the counters.
func (c *Config) Stats() Stats {
	return Stats{
		Reloads:         c.stats.reloads.Load(),
		ReloadErrors:    c.stats.reloadErrors.Load(),
		SourceErrors:    c.stats.sourceErrors.Load(),
		DecryptRequests: c.stats.decryptCalls.Load(),
		Decrypted:       c.stats.decrypted.Load(),
		CacheHits:       c.stats.cacheHits.Load(),
	}
}

// Close stops watching, waits for every goroutine the Config started and
// closes the sources. The active snapshot stays readable. Safe to call
// more than once; it must not be called from a change callback.
func (c *Config) Close() error {
	c.closeOnce.Do(func() {
		c.cancel()
		var errs []error
		for _, s := range c.opts.Sources {
			if err := s.Close(); err != nil {
				errs = append(errs, fmt.Errorf("configcenter: close %s: %w", s.Name(), err))
			}
		}
		c.wg.Wait()
		c.closeErr = errors.Join(errs...)
	})
	return c.closeErr
}

// Format prints a description of c without any value.
func (c *Config) Format(f fmt.State, _ rune) {
	if c == nil {
		_, _ = f.Write([]byte("configcenter.Config(nil)"))
		return
	}
	fmt.Fprintf(f, "configcenter.Config{sources: %d, snapshot: %v}", len(c.opts.Sources), c.cur.Load())
}
