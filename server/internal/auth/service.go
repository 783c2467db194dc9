package auth

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/kmsgo/kmsgo/hsm"
	"github.com/kmsgo/kmsgo/starter/sigv4"
)

// Defaults for Config.
const (
	DefaultRegion    = "local"
	DefaultClockSkew = 5 * time.Minute
	DefaultCacheTTL  = 5 * time.Second

	// ServiceName is the SigV4 service name of kmsd.
	ServiceName = "kms"

	// NonceHeader carries the optional replay nonce.
	NonceHeader = "X-Kms-Nonce"
)

// nonceSlack is added to a nonce's lifetime to absorb clock differences
// between replicas.
const nonceSlack = time.Minute

// nonceRow remembers one used nonce until ExpiresAt.
type nonceRow struct {
	AccessKeyID string `gorm:"primaryKey;size:32"`
	Nonce       string `gorm:"primaryKey;size:64"`
	ExpiresAt   time.Time
}

func (nonceRow) TableName() string { return noncesTable }

// Config configures a Service. The zero value is usable.
type Config struct {
	// Region is the SigV4 region requests must be signed for ("local" when
	// empty).
	Region string
	// RequireNonce rejects requests without a signed X-Kms-Nonce header.
	RequireNonce bool
	// ClockSkew is how far X-Amz-Date may be from the server clock (5
	// minutes when zero).
	ClockSkew time.Duration
	// CacheTTL bounds how long an unwrapped secret, status and policy are
	// reused before being read again from the database (5 s when zero). It
	// is the bound within which a change made on another replica applies.
	CacheTTL time.Duration
	// Now returns the current time (time.Now when nil). For tests.
	Now func() time.Time
}

// Principal is the authenticated caller of a request.
type Principal struct {
	AccessKeyID string
	Policy      Policy
}

// Service authenticates requests and manages access keys. It is safe for
// concurrent use. Several Services (one per replica) may share a database.
type Service struct {
	db      *gorm.DB
	hsm     hsm.Backend
	region  string
	service string
	skew    time.Duration
	now     func() time.Time
	nonce   bool

	dummy string // random secret used for unknown access keys

	// dummyWrapped is dummy wrapped by the root key, unwrapped on every
	// cache miss of an unknown key so that it costs what a known key costs.
	dummyMu      sync.Mutex
	dummyWrapped []byte

	cache     keyCache
	lastPurge atomic.Int64 // unix seconds of the last opportunistic purge

	// signatures counts signature computations, so tests can prove that
	// every rejected key (unknown, disabled, bad signature) costs one.
	signatures atomic.Int64
}

// New returns a Service over db (migrated with Migrations) whose access-key
// secrets are wrapped by backend's root key.
func New(db *gorm.DB, backend hsm.Backend, cfg Config) (*Service, error) {
	if db == nil || backend == nil {
		return nil, fmt.Errorf("%w: nil database or HSM backend", ErrInvalidArgument)
	}
	s := &Service{
		db:      db,
		hsm:     backend,
		region:  cfg.Region,
		service: ServiceName,
		skew:    cfg.ClockSkew,
		now:     cfg.Now,
		nonce:   cfg.RequireNonce,
	}
	if s.region == "" {
		s.region = DefaultRegion
	}
	if !isScopePart(s.region) {
		return nil, fmt.Errorf("%w: region %q", ErrInvalidArgument, s.region)
	}
	if s.skew <= 0 {
		s.skew = DefaultClockSkew
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.cache.ttl = cfg.CacheTTL
	if s.cache.ttl <= 0 {
		s.cache.ttl = DefaultCacheTTL
	}
	var d [SecretLen * 6 / 8]byte
	if _, err := rand.Read(d[:]); err != nil {
		return nil, fmt.Errorf("auth: random: %w", err)
	}
	s.dummy = base64.RawURLEncoding.EncodeToString(d[:])
	// Wrap the dummy secret now when the HSM answers (else on first use),
	// so that the first unknown key does not cost an extra wrap.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	if w, err := backend.WrapKey(ctx, []byte(s.dummy), secretAAD("~unknown")); err == nil {
		s.dummyWrapped = w
	}
	cancel()
	return s, nil
}

// Region returns the SigV4 region requests must be signed for.
func (s *Service) Region() string { return s.region }

// Authenticate verifies the SigV4 signature of r, whose body the caller has
// already read into body, and returns the caller. r.Body is not read.
//
// Any failure to authenticate matches ErrUnauthenticated; unknown access
// key, disabled key and bad signature return ErrUnauthenticated itself.
// Other errors are server faults: a database error, or an HSM error that
// matches hsm.ErrUnavailable (map it to 503).
func (s *Service) Authenticate(r *http.Request, body []byte) (*Principal, error) {
	ctx := r.Context()
	values := r.Header.Values("Authorization")
	if len(values) != 1 {
		return nil, fmt.Errorf("%w: need exactly one Authorization header", ErrUnauthenticated)
	}
	h, err := parseAuthorization(values[0])
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnauthenticated, err)
	}
	if h.Service != s.service || h.Region != s.region {
		return nil, fmt.Errorf("%w: credential scope must be region %q, service %q", ErrUnauthenticated, s.region, s.service)
	}
	t, err := s.requestTime(r, h)
	if err != nil {
		return nil, err
	}
	payloadHash, err := bodyHash(r, body)
	if err != nil {
		return nil, err
	}
	nonce, err := s.requestNonce(r, h)
	if err != nil {
		return nil, err
	}
	sb := sigBufs.Get().(*sigBuf)
	defer putSigBuf(sb)
	sb.canon, sb.qs, err = canonicalRequest(sb.canon[:0], sb.qs, r, h, body, payloadHash)
	clear(sb.qs) // drop references to the query's strings
	if err != nil {
		return nil, err
	}

	// An unknown key gets an entry with the dummy secret, so the work below
	// is the same for every key.
	entry, err := s.lookup(ctx, h.AccessKeyID)
	if err != nil {
		return nil, err
	}
	s.signatures.Add(1)
	match := s.signatureMatches(entry, h, r.Header["X-Amz-Date"][0], sb.canon, sb)
	if !match || !entry.enabled {
		return nil, ErrUnauthenticated
	}
	if nonce != "" {
		if err := s.useNonce(ctx, h.AccessKeyID, nonce, t); err != nil {
			return nil, err
		}
	}
	return &Principal{AccessKeyID: h.AccessKeyID, Policy: entry.policy}, nil
}

// requestTime parses X-Amz-Date, checks it against the scope date and the
// clock window.
func (s *Service) requestTime(r *http.Request, h *authHeader) (time.Time, error) {
	dates := r.Header.Values("X-Amz-Date")
	if len(dates) != 1 || !h.signs("x-amz-date") {
		return time.Time{}, fmt.Errorf("%w: need one signed X-Amz-Date header", ErrUnauthenticated)
	}
	t, err := time.Parse(amzDateFormat, dates[0])
	var buf [len(amzDateFormat)]byte
	if err != nil || string(t.AppendFormat(buf[:0], amzDateFormat)) != dates[0] {
		return time.Time{}, fmt.Errorf("%w: malformed X-Amz-Date", ErrUnauthenticated)
	}
	if dates[0][:8] != h.Date {
		return time.Time{}, fmt.Errorf("%w: credential date does not match X-Amz-Date", ErrUnauthenticated)
	}
	d := s.now().Sub(t)
	if d > s.skew || d < -s.skew {
		return time.Time{}, fmt.Errorf("%w: request time outside the %s window", ErrUnauthenticated, s.skew)
	}
	return t, nil
}

// bodyHash returns the hex SHA-256 of body and checks it against
// X-Amz-Content-Sha256 when that header is present.
func bodyHash(r *http.Request, body []byte) (string, error) {
	hash := sigv4.HexSHA256(body)
	if claimed := r.Header.Values("X-Amz-Content-Sha256"); len(claimed) > 0 {
		if len(claimed) != 1 || claimed[0] != hash {
			return "", fmt.Errorf("%w: X-Amz-Content-Sha256 does not match the body", ErrUnauthenticated)
		}
	}
	return hash, nil
}

// requestNonce returns the request's X-Kms-Nonce ("" when absent and not
// required).
func (s *Service) requestNonce(r *http.Request, h *authHeader) (string, error) {
	vals := r.Header.Values(NonceHeader)
	switch {
	case len(vals) == 0 && !s.nonce:
		return "", nil
	case len(vals) == 0:
		return "", fmt.Errorf("%w: %s header required", ErrUnauthenticated, NonceHeader)
	case len(vals) > 1:
		return "", fmt.Errorf("%w: more than one %s header", ErrUnauthenticated, NonceHeader)
	case !h.signs(strings.ToLower(NonceHeader)):
		return "", fmt.Errorf("%w: %s must be signed", ErrUnauthenticated, NonceHeader)
	case !nonceOK(vals[0]):
		return "", fmt.Errorf("%w: %s must be 16-64 characters of [A-Za-z0-9._~+/=-]", ErrUnauthenticated, NonceHeader)
	}
	return vals[0], nil
}

// useNonce records (ak, nonce) until the request can no longer pass the
// clock window. A nonce that is already recorded and not expired is a replay.
func (s *Service) useNonce(ctx context.Context, ak, nonce string, t time.Time) error {
	now := s.now().UTC().Truncate(time.Second)
	s.maybePurge(ctx, now)
	row := nonceRow{AccessKeyID: ak, Nonce: nonce, ExpiresAt: t.UTC().Truncate(time.Second).Add(s.skew + nonceSlack)}
	for attempt := 0; attempt < 2; attempt++ {
		res := s.db.WithContext(ctx).Clauses(onConflictDoNothing).Create(&row)
		if res.Error != nil {
			return fmt.Errorf("auth: record nonce: %w", res.Error)
		}
		if res.RowsAffected == 1 {
			return nil
		}
		// The pair exists. If its row has expired (not purged yet), drop it
		// and try once more; otherwise this is a replay.
		del := s.db.WithContext(ctx).
			Where("access_key_id = ? AND nonce = ? AND expires_at < ?", ak, nonce, now).
			Delete(&nonceRow{})
		if del.Error != nil {
			return fmt.Errorf("auth: record nonce: %w", del.Error)
		}
		if del.RowsAffected == 0 {
			break
		}
	}
	return fmt.Errorf("%w: replayed nonce", ErrUnauthenticated)
}

var onConflictDoNothing = clause.OnConflict{DoNothing: true}

// purgeInterval is the least time between two opportunistic purges.
const purgeInterval = time.Minute

func (s *Service) maybePurge(ctx context.Context, now time.Time) {
	last := s.lastPurge.Load()
	if now.Unix()-last < int64(purgeInterval/time.Second) || !s.lastPurge.CompareAndSwap(last, now.Unix()) {
		return
	}
	// Best effort: a failure here must not fail the request; the next
	// purge retries.
	_, _ = s.purge(ctx, now)
}

// PurgeExpiredNonces deletes remembered nonces that have expired and
// returns how many. Authenticate also does this at most once a minute.
func (s *Service) PurgeExpiredNonces(ctx context.Context) (int64, error) {
	return s.purge(ctx, s.now().UTC().Truncate(time.Second))
}

func (s *Service) purge(ctx context.Context, now time.Time) (int64, error) {
	res := s.db.WithContext(ctx).Where("expires_at < ?", now).Delete(&nonceRow{})
	if res.Error != nil {
		return 0, fmt.Errorf("auth: purge nonces: %w", res.Error)
	}
	return res.RowsAffected, nil
}

// cacheEntry is what Authenticate needs about one access key. Entries are
// immutable once cached.
type cacheEntry struct {
	secret  string                     // the dummy secret for an unknown key
	derived atomic.Pointer[derivedKey] // signing key of the last date used
	enabled bool                       // false for disabled and unknown keys
	known   bool                       // false for an unknown key
	policy  Policy
	expires time.Time
}

// maxCacheEntries bounds the cache; beyond it, entries of unknown keys are
// no longer cached (entries of existing keys always are).
const maxCacheEntries = 8192

// keyCache holds cacheEntries for ttl: of existing access keys, and of
// unknown ids so that probing them costs what a known key costs.
type keyCache struct {
	ttl time.Duration
	mu  sync.Mutex
	m   map[string]*cacheEntry
}

func (c *keyCache) get(id string, now time.Time) *cacheEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.m[id]
	if e == nil || !now.Before(e.expires) {
		return nil
	}
	return e
}

func (c *keyCache) put(id string, e *cacheEntry, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string]*cacheEntry)
	}
	if len(c.m) >= maxCacheEntries {
		for k, v := range c.m {
			if !now.Before(v.expires) {
				delete(c.m, k)
			}
		}
		if len(c.m) >= maxCacheEntries && !e.known {
			return
		}
	}
	c.m[id] = e
}

func (c *keyCache) forget(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, id)
}

// dummyPolicy is parsed for unknown keys, as a stored policy is for known ones.
var dummyPolicy = func() []byte {
	b, _ := encodePolicy(AdminPolicy())
	return []byte(b)
}()

// dummyWork unwraps the wrapped dummy secret (wrapping it once first) and
// parses a policy, discarding both.
func (s *Service) dummyWork(ctx context.Context) error {
	s.dummyMu.Lock()
	w := s.dummyWrapped
	s.dummyMu.Unlock()
	if w == nil {
		nw, err := s.hsm.WrapKey(ctx, []byte(s.dummy), secretAAD("~unknown"))
		if err != nil {
			return fmt.Errorf("auth: wrap dummy secret: %w", err)
		}
		s.dummyMu.Lock()
		if s.dummyWrapped == nil {
			s.dummyWrapped = nw
		}
		w = s.dummyWrapped
		s.dummyMu.Unlock()
	}
	secret, err := s.hsm.UnwrapKey(ctx, w, secretAAD("~unknown"))
	if err != nil {
		return fmt.Errorf("auth: unwrap: %w", err)
	}
	hsm.Zero(secret)
	_, _ = ParsePolicy(dummyPolicy)
	return nil
}

// lookup returns the cache entry of access key id, loading and unwrapping it
// on a miss. An unknown id gets a disabled entry with the dummy secret.
func (s *Service) lookup(ctx context.Context, id string) (*cacheEntry, error) {
	now := s.now()
	if e := s.cache.get(id, now); e != nil {
		return e, nil
	}
	row, err := s.loadRow(ctx, s.db, id)
	if errors.Is(err, ErrNotFound) {
		// Same work as a known key: one HSM unwrap and one policy parse,
		// so the two cannot be told apart by timing.
		if err := s.dummyWork(ctx); err != nil {
			return nil, err
		}
		e := &cacheEntry{secret: s.dummy, expires: now.Add(s.cache.ttl)}
		s.cache.put(id, e, now)
		return e, nil
	}
	if err != nil {
		return nil, err
	}
	secret, err := s.hsm.UnwrapKey(ctx, row.WrappedSecret, secretAAD(row.ID))
	if err != nil {
		return nil, fmt.Errorf("auth: unwrap secret of %s: %w", row.ID, err)
	}
	p, err := ParsePolicy([]byte(row.Policy))
	if err != nil {
		hsm.Zero(secret)
		return nil, fmt.Errorf("auth: stored policy of %s: %w", row.ID, err)
	}
	e := &cacheEntry{
		secret:  string(secret),
		enabled: row.Status == string(StatusEnabled),
		known:   true,
		policy:  p,
		expires: now.Add(s.cache.ttl),
	}
	hsm.Zero(secret)
	s.cache.put(id, e, now)
	return e, nil
}
