package kms

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/kmsgo/kmsgo/hsm"
	"github.com/kmsgo/kmsgo/server/internal/store"
	"gorm.io/gorm"
)

// Clock returns the current business time (deletion windows, rotation
// schedules, import token expiry). Tests inject a fake one.
type Clock func() time.Time

// Defaults of Config.
const (
	DefaultMetadataTTL       = 2 * time.Second
	DefaultMaterialCacheSize = 1024
	DefaultImportTokenTTL    = 24 * time.Hour
	DefaultOrphanGrace       = 15 * time.Minute
)

// Config configures a Service. DB and HSM are required; the store
// migrations (store.Migrations) must have been applied to DB.
type Config struct {
	DB  *gorm.DB
	HSM hsm.Backend

	// Clock defaults to time.Now.
	Clock Clock

	// MetadataTTL bounds how long a replica serves key metadata (state,
	// versions, aliases) from memory on the crypto path. A state change made
	// on another replica takes effect here at most MetadataTTL later. Zero
	// means DefaultMetadataTTL (2s); negative disables caching.
	MetadataTTL time.Duration

	// MaterialCacheSize bounds how many unwrapped SOFTWARE key versions are
	// kept in memory (LRU; evicted material is zeroed). Zero means
	// DefaultMaterialCacheSize; negative disables the cache.
	MaterialCacheSize int

	// ImportTokenTTL is how long GetParametersForImport results are valid.
	ImportTokenTTL time.Duration

	// OrphanGrace is how old an unreferenced HSM object must be before
	// CleanupOrphans destroys it (it may belong to a rotation in flight).
	OrphanGrace time.Duration

	// DeploymentID names this deployment in the ids of the HSM objects it
	// creates. Empty means the id stored in the database (created on first
	// use, see store.EnsureDeploymentID), which is what kmsd uses.
	DeploymentID string

	// UsageFlushInterval is how often the per-version decryption counts
	// gathered in memory are added to the database. Zero means
	// DefaultUsageFlushInterval (10s); negative flushes only on Close and
	// FlushUsage.
	UsageFlushInterval time.Duration

	// RetirementQuietPeriod is how long a key version must have gone
	// without decryptions before DisableKeyVersion accepts it unforced.
	// Keep it much longer than UsageFlushInterval: another replica's
	// decryptions reach the database up to one flush interval late. Zero
	// means DefaultRetirementQuietPeriod (24h); negative means no quiet
	// period.
	RetirementQuietPeriod time.Duration
}

// Service is the transport-free key management service. It is safe for
// concurrent use, and several Services (replicas) may share one database.
type Service struct {
	st          *store.Store
	hsm         hsm.Backend
	clock       Clock
	ttl         time.Duration
	importTTL   time.Duration
	orphanGrace time.Duration
	deployment  string

	mu      sync.RWMutex
	keys    map[string]*keyEntry
	aliases map[string]aliasEntry
	loading map[string]*loadCall // in-flight cache refills, one per key

	material *materialCache
	refs     refCache // ResolveKey answers

	usage     *usageTable // unflushed per-version decryption counts
	quiet     time.Duration
	stopFlush chan struct{}
	flushDone chan struct{}
	closeOnce sync.Once
}

// New returns a Service.
func New(cfg Config) (*Service, error) {
	if cfg.DB == nil || cfg.HSM == nil {
		return nil, errors.New("kms: Config.DB and Config.HSM are required")
	}
	s := &Service{
		st:          store.New(cfg.DB),
		hsm:         cfg.HSM,
		clock:       cfg.Clock,
		ttl:         cfg.MetadataTTL,
		importTTL:   cfg.ImportTokenTTL,
		orphanGrace: cfg.OrphanGrace,
		deployment:  cfg.DeploymentID,
		keys:        map[string]*keyEntry{},
		aliases:     map[string]aliasEntry{},
		loading:     map[string]*loadCall{},
	}
	if s.clock == nil {
		s.clock = time.Now
	}
	if s.ttl == 0 {
		s.ttl = DefaultMetadataTTL
	}
	if s.importTTL <= 0 {
		s.importTTL = DefaultImportTokenTTL
	}
	if s.orphanGrace <= 0 {
		s.orphanGrace = DefaultOrphanGrace
	}
	if s.deployment == "" {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		id, err := s.st.EnsureDeploymentID(ctx)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("kms: deployment id: %w", err)
		}
		s.deployment = id
	}
	size := cfg.MaterialCacheSize
	if size == 0 {
		size = DefaultMaterialCacheSize
	}
	s.material = newMaterialCache(size)
	s.usage = newUsageTable()
	switch {
	case cfg.RetirementQuietPeriod == 0:
		s.quiet = DefaultRetirementQuietPeriod
	case cfg.RetirementQuietPeriod > 0:
		s.quiet = cfg.RetirementQuietPeriod
	}
	interval := cfg.UsageFlushInterval
	if interval == 0 {
		interval = DefaultUsageFlushInterval
	}
	if interval > 0 {
		s.stopFlush, s.flushDone = make(chan struct{}), make(chan struct{})
		go s.flushLoop(interval, s.stopFlush, s.flushDone)
	}
	return s, nil
}

// DeploymentID returns the id that names this deployment's HSM objects.
func (s *Service) DeploymentID() string { return s.deployment }

// Close stops the usage flusher, adds the last unflushed decryption counts
// to the database, and zeroes and drops every cached key material. It does
// not close the database or the HSM, which belong to the caller; close them
// after the Service.
func (s *Service) Close() error {
	var err error
	s.closeOnce.Do(func() {
		if s.stopFlush != nil {
			close(s.stopFlush)
			<-s.flushDone
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = s.FlushUsage(ctx)
		cancel()
		if err != nil {
			err = fmt.Errorf("kms: flush version usage: %w", err)
		}
	})
	s.material.purge("")
	s.mu.Lock()
	s.keys = map[string]*keyEntry{}
	s.aliases = map[string]aliasEntry{}
	s.mu.Unlock()
	return err
}

// now returns business time in UTC at millisecond precision (what every
// supported database stores).
func (s *Service) now() time.Time { return s.clock().UTC().Truncate(time.Millisecond) }

// keyEntry is a cached snapshot of a key and its versions.
type keyEntry struct {
	key      store.Key
	versions map[int64]store.KeyVersion
	usage    map[int64]*usageCell // decryption counters of the versions
	loaded   time.Time            // monotonic wall time, not business time
}

// noteUse counts one decryption under version ver of the key of e.
func noteUse(e *keyEntry, ver int64) {
	if c := e.usage[ver]; c != nil {
		c.count.Add(1)
	}
}

type aliasEntry struct {
	keyID  string
	loaded time.Time
}

func (s *Service) fresh(loaded time.Time) bool {
	return s.ttl > 0 && time.Since(loaded) < s.ttl
}

// loadKey reads key id and its versions from the database and refreshes the
// cache.
func (s *Service) loadKey(ctx context.Context, id string) (*keyEntry, error) {
	k, vs, err := s.st.LoadKey(ctx, id)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			s.invalidate(id)
			return nil, fmt.Errorf("%w: key %s", ErrNotFound, id)
		}
		return nil, err
	}
	e := &keyEntry{key: k, versions: make(map[int64]store.KeyVersion, len(vs)), loaded: time.Now()}
	for _, v := range vs {
		e.versions[v.Version] = v
		if v.State == store.VersionDestroyed {
			s.material.drop(k.ID, v.Version)
		}
	}
	if k.State == store.KeyStateDestroyed {
		s.material.purge(k.ID)
	}
	e.usage = s.usage.cellsFor(k.ID, e.versions)
	if s.ttl > 0 {
		s.mu.Lock()
		s.keys[id] = e
		s.mu.Unlock()
	}
	return e, nil
}

// loadCall is one in-flight refill of a cache entry that concurrent
// callers share, so an expiring hot key costs one query, not one per caller.
type loadCall struct {
	done chan struct{}
	e    *keyEntry
	err  error
}

// cachedKey returns key id from the metadata cache if fresh, else loads it
// (once for all concurrent callers).
func (s *Service) cachedKey(ctx context.Context, id string) (*keyEntry, error) {
	s.mu.RLock()
	e, ok := s.keys[id]
	s.mu.RUnlock()
	if ok && s.fresh(e.loaded) {
		return e, nil
	}
	if s.ttl <= 0 {
		return s.loadKey(ctx, id)
	}
	s.mu.Lock()
	if c, ok := s.loading[id]; ok {
		s.mu.Unlock()
		select {
		case <-c.done:
			return c.e, c.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	c := &loadCall{done: make(chan struct{})}
	s.loading[id] = c
	s.mu.Unlock()
	c.e, c.err = s.loadKey(context.WithoutCancel(ctx), id)
	s.mu.Lock()
	delete(s.loading, id)
	s.mu.Unlock()
	close(c.done)
	return c.e, c.err
}

func (s *Service) invalidate(id string) {
	s.mu.Lock()
	delete(s.keys, id)
	s.mu.Unlock()
}

func (s *Service) invalidateAlias(name string) {
	s.mu.Lock()
	delete(s.aliases, name)
	s.mu.Unlock()
	s.refs.clear()
}

// resolve turns a key id or alias name into a key id. cached allows the
// alias cache (crypto path).
func (s *Service) resolve(ctx context.Context, idOrAlias string, cached bool) (string, error) {
	if idOrAlias == "" {
		return "", validationf("key_id is required")
	}
	if !strings.HasPrefix(idOrAlias, AliasPrefix) {
		if !ValidKeyID(idOrAlias) {
			return "", fmt.Errorf("%w: key %q", ErrNotFound, idOrAlias)
		}
		return idOrAlias, nil
	}
	if err := validateAliasName(idOrAlias); err != nil {
		return "", err
	}
	if cached {
		s.mu.RLock()
		a, ok := s.aliases[idOrAlias]
		s.mu.RUnlock()
		if ok && s.fresh(a.loaded) {
			return a.keyID, nil
		}
	}
	a, err := s.st.GetAlias(ctx, idOrAlias)
	if errors.Is(err, store.ErrNotFound) {
		s.invalidateAlias(idOrAlias)
		return "", fmt.Errorf("%w: alias %s", ErrNotFound, idOrAlias)
	}
	if err != nil {
		return "", err
	}
	if s.ttl > 0 {
		s.mu.Lock()
		s.aliases[idOrAlias] = aliasEntry{keyID: a.KeyID, loaded: time.Now()}
		s.mu.Unlock()
	}
	return a.KeyID, nil
}

// newKeyID returns a random UUID v4 string.
func newKeyID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:], nil
}

// ValidKeyID reports whether id has the form of a key id (the lower-case
// UUID form newKeyID produces). Transports use it to tell key ids from
// other references; the core applies it to every id it is given.
func ValidKeyID(id string) bool {
	if len(id) != 36 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
				return false
			}
		}
	}
	return true
}

// ValidAliasName reports whether name is a valid alias name: AliasPrefix
// followed by 1 to MaxAliasNameLen-len(AliasPrefix) letters, digits, '/',
// '_' and '-'. It is the one rule; transports with their own error shapes
// (the AWS protocol) call it instead of keeping a copy.
func ValidAliasName(name string) bool {
	rest, ok := strings.CutPrefix(name, AliasPrefix)
	if !ok || rest == "" || len(name) > MaxAliasNameLen {
		return false
	}
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '/' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func validateAliasName(name string) error {
	if !ValidAliasName(name) {
		return validationf("alias name must be %q followed by 1-%d letters, digits, '/', '_' or '-'", AliasPrefix, MaxAliasNameLen-len(AliasPrefix))
	}
	return nil
}

// storeErr maps store errors to service errors.
func storeErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("%w", ErrNotFound)
	case errors.Is(err, store.ErrDuplicate):
		return fmt.Errorf("%w", ErrAlreadyExists)
	case errors.Is(err, store.ErrConflict):
		return ErrConcurrentUpdate
	}
	return err
}
