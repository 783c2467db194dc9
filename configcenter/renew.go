package configcenter

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/kmsgo/kmsgo/starter/kmsclient"
)

// RenewClient is what ciphertext renewal needs from kmsd; *kmsclient.Client
// implements it. ReEncrypt runs inside kmsd: the plaintext never reaches
// the renewing process.
type RenewClient interface {
	DescribeKey(ctx context.Context, id string) (*kmsclient.KeyMetadata, error)
	ReEncrypt(ctx context.Context, blob []byte, srcCtx map[string]string, dstKeyID string, dstCtx map[string]string) (*kmsclient.ReEncryptResult, error)
}

var _ RenewClient = (*kmsclient.Client)(nil)

// Outcomes of one ENC value in a renewal run.
const (
	OutcomeRenewed    = "renewed"     // re-encrypted under the key's primary version
	OutcomeWouldRenew = "would-renew" // dry run: would be re-encrypted
	OutcomeSkipped    = "skipped"     // already under the primary version
	OutcomeFailed     = "failed"      // left unchanged; Err says why
)

// DefaultRenewConcurrency is the default of RenewOptions.Concurrency.
const DefaultRenewConcurrency = 4

// RenewOptions configure a Renewal.
type RenewOptions struct {
	// Client talks to kmsd (required).
	Client RenewClient
	// Marker delimits encrypted values; the zero value is ENC( and ).
	Marker Marker
	// EncryptionContext is the context the values were encrypted with
	// (the --context of `kmsctl enc`; none by default). The renewed value
	// is encrypted with the same context.
	EncryptionContext map[string]string
	// DryRun decides what would change without calling ReEncrypt.
	DryRun bool
	// Concurrency bounds the ReEncrypt calls in flight for one document
	// (default DefaultRenewConcurrency).
	Concurrency int
	// OnValue, when set, is called once per ENC value with its outcome
	// (progress output). It never carries a ciphertext or a plaintext.
	OnValue func(RenewEvent)
}

// RenewEvent is the outcome of one ENC value.
type RenewEvent struct {
	Document   string // etcd key, Nacos dataId, file name
	Line       int    // 1-based line of the marker in the document
	KeyID      string // from the ciphertext header ("" if unreadable)
	KeyVersion int    // version the value was under
	NewVersion int    // version it is (or would be) under after renewal
	Outcome    string // one of the Outcome* constants
	Err        error  // for OutcomeFailed; never holds a value
}

// RenewFailure is one ENC value that could not be renewed.
type RenewFailure struct {
	Document   string `json:"document"`
	Line       int    `json:"line"`
	KeyID      string `json:"key_id,omitempty"`
	KeyVersion int    `json:"key_version,omitempty"`
	Reason     string `json:"reason"`
}

// maxReportFailures bounds RenewReport.Failures.
const maxReportFailures = 100

// RenewReport counts what a renewal did.
type RenewReport struct {
	DryRun    bool `json:"dry_run"`
	Documents int  `json:"documents"` // documents (keys, dataIds) read
	Written   int  `json:"written"`   // documents written back
	Conflicts int  `json:"conflicts"` // compare-and-swap conflicts (each re-read)
	// GaveUp counts documents left unchanged because they kept changing
	// under the renewal (a concurrent edit always wins); the next run
	// picks them up.
	GaveUp   int            `json:"gave_up"`
	Scanned  int            `json:"scanned"` // ENC values found
	Renewed  int            `json:"renewed"` // re-encrypted (dry run: would be)
	Skipped  int            `json:"skipped"` // already under the primary version
	Failed   int            `json:"failed"`  // left unchanged, see Failures
	Failures []RenewFailure `json:"failures,omitempty"`
}

// Add adds o's counts and failures to r.
func (r *RenewReport) Add(o RenewReport) {
	r.DryRun = r.DryRun || o.DryRun
	r.Documents += o.Documents
	r.Written += o.Written
	r.Conflicts += o.Conflicts
	r.GaveUp += o.GaveUp
	r.Scanned += o.Scanned
	r.Renewed += o.Renewed
	r.Skipped += o.Skipped
	r.Failed += o.Failed
	for _, f := range o.Failures {
		if len(r.Failures) < maxReportFailures {
			r.Failures = append(r.Failures, f)
		}
	}
}

// String is a one-line summary.
func (r RenewReport) String() string {
	verb := "renewed"
	if r.DryRun {
		verb = "would renew"
	}
	return fmt.Sprintf("documents %d, written %d, conflicts %d, gave up %d; values scanned %d, %s %d, skipped %d, failed %d",
		r.Documents, r.Written, r.Conflicts, r.GaveUp, r.Scanned, verb, r.Renewed, r.Skipped, r.Failed)
}

// Err is nil when nothing failed, else an error matching ErrRenewIncomplete.
func (r RenewReport) Err() error {
	if r.Failed == 0 && r.GaveUp == 0 {
		return nil
	}
	return fmt.Errorf("%w: %d value(s) failed, %d document(s) kept changing", ErrRenewIncomplete, r.Failed, r.GaveUp)
}

// Renewal is one renewal run. It caches each key's primary version and each
// re-encrypted ciphertext for its lifetime, so make one per run. Safe for
// concurrent use.
type Renewal struct {
	opts RenewOptions

	mu      sync.Mutex
	primary map[string]primaryVersion
	renewed map[string]renewedValue // old base64 -> new
}

type primaryVersion struct {
	version int
	err     error
}

type renewedValue struct {
	b64     string
	version int
}

// NewRenewal checks opts and starts a run.
func NewRenewal(opts RenewOptions) (*Renewal, error) {
	if opts.Client == nil {
		return nil, fmt.Errorf("%w: renewal needs a Client", ErrBadOptions)
	}
	opts.Marker = opts.Marker.orDefault()
	if opts.Marker.Prefix == "" {
		return nil, fmt.Errorf("%w: empty marker prefix", ErrBadOptions)
	}
	return &Renewal{opts: opts, primary: map[string]primaryVersion{}, renewed: map[string]renewedValue{}}, nil
}

// DryRun reports whether the run only decides.
func (r *Renewal) DryRun() bool { return r.opts.DryRun }

// textMarker is one marker found in a document's text.
type textMarker struct {
	start, end int // text[start:end] is the base64 content
	line       int
	blob       []byte
	err        error
}

// scanText finds every prefix<base64>suffix in text, comments included.
// Content made of base64 characters that does not decode is reported with
// err set (it is a failure, never silently skipped).
func scanText(text string, m Marker) []textMarker {
	var out []textMarker
	p, sfx := m.Prefix, m.Suffix
	for pos := 0; pos < len(text); {
		i := strings.Index(text[pos:], p)
		if i < 0 {
			break
		}
		start := pos + i
		c := start + len(p)
		j := c
		for j < len(text) && isB64Char(text[j]) {
			j++
		}
		if j == c || (sfx != "" && !strings.HasPrefix(text[j:], sfx)) {
			pos = start + 1
			continue
		}
		tm := textMarker{start: c, end: j, line: 1 + strings.Count(text[:start], "\n")}
		blob, err := decodeB64(text[c:j])
		switch {
		case err != nil || len(blob) == 0:
			tm.err = ErrMalformedMarker
		default:
			tm.blob = blob
		}
		out = append(out, tm)
		pos = j + len(sfx)
	}
	return out
}

// primaryOf returns keyID's primary version, from the cache or DescribeKey.
func (r *Renewal) primaryOf(ctx context.Context, keyID string) (int, error) {
	r.mu.Lock()
	pv, ok := r.primary[keyID]
	r.mu.Unlock()
	if ok {
		return pv.version, pv.err
	}
	md, err := r.opts.Client.DescribeKey(ctx, keyID)
	if err != nil {
		if isKMSDown(ctx, err) {
			return 0, err // not cached: the whole run stops
		}
		pv = primaryVersion{err: err}
	} else {
		pv = primaryVersion{version: md.PrimaryVersion}
	}
	r.mu.Lock()
	r.primary[keyID] = pv
	r.mu.Unlock()
	return pv.version, pv.err
}

// isKMSDown tells an answer about one value (a 4xx: invalid ciphertext,
// disabled key, access denied) from kmsd being unavailable or the run
// being cancelled, which stop the run instead.
func isKMSDown(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return true
	}
	var ae *kmsclient.APIError
	if errors.As(err, &ae) {
		return ae.StatusCode >= 500 || ae.StatusCode == 429
	}
	return !errors.Is(err, kmsclient.ErrInvalidCiphertext) && !errors.Is(err, kmsclient.ErrInvalidArgument)
}

// RenewText re-encrypts every ENC value of text whose key version is not its
// key's primary version, under the same key and encryption context, and
// returns the new text: every byte outside the markers' base64 content
// (comments, layout, other values) is unchanged. Values that cannot be
// renewed stay as they are and are counted as failed. The error is
// non-nil only when kmsd is unavailable or ctx ends (then out is nil and
// nothing must be written). The report's Documents is 1. Up to
// RenewOptions.Concurrency ReEncrypt calls run at once.
func (r *Renewal) RenewText(ctx context.Context, name string, text []byte) (out []byte, rep RenewReport, err error) {
	rep.DryRun = r.opts.DryRun
	rep.Documents = 1
	s := string(text)
	markers := scanText(s, r.opts.Marker)
	if len(markers) == 0 {
		return text, rep, nil
	}
	events := make([]RenewEvent, len(markers))
	newB64 := make([]string, len(markers))
	var todo []int // markers to re-encrypt
	for i, m := range markers {
		events[i] = RenewEvent{Document: name, Line: m.line}
		need, err := r.decide(ctx, m, &events[i])
		if err != nil {
			return nil, RenewReport{}, err
		}
		if need {
			todo = append(todo, i)
		}
	}
	if err := r.reencryptAll(ctx, markers, todo, events, newB64); err != nil {
		return nil, RenewReport{}, err
	}
	var b strings.Builder
	b.Grow(len(s))
	last := 0
	for i, m := range markers {
		ev := events[i]
		rep.Scanned++
		switch ev.Outcome {
		case OutcomeRenewed, OutcomeWouldRenew:
			rep.Renewed++
		case OutcomeSkipped:
			rep.Skipped++
		default:
			rep.Failed++
			if len(rep.Failures) < maxReportFailures {
				rep.Failures = append(rep.Failures, RenewFailure{Document: name, Line: m.line,
					KeyID: ev.KeyID, KeyVersion: ev.KeyVersion, Reason: ev.Err.Error()})
			}
		}
		if r.opts.OnValue != nil {
			r.opts.OnValue(ev)
		}
		if newB64[i] != "" {
			b.WriteString(s[last:m.start])
			b.WriteString(newB64[i])
			last = m.end
		}
	}
	b.WriteString(s[last:])
	return []byte(b.String()), rep, nil
}

// decide reads one marker's header and its key's primary version and fills
// ev; it reports whether the value is to be re-encrypted.
func (r *Renewal) decide(ctx context.Context, m textMarker, ev *RenewEvent) (bool, error) {
	if m.err != nil {
		ev.Outcome, ev.Err = OutcomeFailed, m.err
		return false, nil
	}
	h, err := kmsclient.ParseCiphertextHeader(m.blob)
	if err != nil {
		ev.Outcome, ev.Err = OutcomeFailed, fmt.Errorf("%w: not a kmsd ciphertext", ErrDecrypt)
		return false, nil
	}
	ev.KeyID, ev.KeyVersion, ev.NewVersion = h.KeyID, h.KeyVersion, h.KeyVersion
	primary, err := r.primaryOf(ctx, h.KeyID)
	if err != nil {
		if isKMSDown(ctx, err) {
			return false, fmt.Errorf("%w: describe key %s: %w", ErrKMSUnavailable, h.KeyID, err)
		}
		ev.Outcome, ev.Err = OutcomeFailed, fmt.Errorf("describe key: %w", err)
		return false, nil
	}
	if h.KeyVersion >= primary {
		ev.Outcome = OutcomeSkipped
		return false, nil
	}
	ev.NewVersion = primary
	if r.opts.DryRun {
		ev.Outcome = OutcomeWouldRenew
		return false, nil
	}
	return true, nil
}

// reencryptAll re-encrypts markers[todo] with up to Concurrency calls in
// flight, filling events and newB64; equal ciphertexts share one call.
func (r *Renewal) reencryptAll(ctx context.Context, markers []textMarker, todo []int, events []RenewEvent, newB64 []string) error {
	if len(todo) == 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	n := r.opts.Concurrency
	if n <= 0 {
		n = DefaultRenewConcurrency
	}
	work := make(chan int)
	var wg sync.WaitGroup
	var once sync.Once
	var firstErr error
	for range min(n, len(todo)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				if err := r.reencryptOne(ctx, markers[i], &events[i], &newB64[i]); err != nil {
					once.Do(func() { firstErr = err; cancel() })
				}
			}
		}()
	}
	// Duplicates go after their first occurrence is done, so they reuse it.
	seen := map[string]bool{}
	var dups []int
feed:
	for _, i := range todo {
		if seen[string(markers[i].blob)] {
			dups = append(dups, i)
			continue
		}
		seen[string(markers[i].blob)] = true
		select {
		case work <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	for _, i := range dups {
		if err := r.reencryptOne(ctx, markers[i], &events[i], &newB64[i]); err != nil {
			return err
		}
	}
	return nil
}

// reencryptOne calls ReEncrypt for one marker (or reuses an earlier result
// for the same ciphertext).
func (r *Renewal) reencryptOne(ctx context.Context, m textMarker, ev *RenewEvent, out *string) error {
	old := string(m.blob)
	r.mu.Lock()
	done, ok := r.renewed[old]
	r.mu.Unlock()
	if ok {
		ev.Outcome, ev.NewVersion, *out = OutcomeRenewed, done.version, done.b64
		return nil
	}
	primary := ev.NewVersion
	res, err := r.opts.Client.ReEncrypt(ctx, m.blob, r.opts.EncryptionContext, ev.KeyID, r.opts.EncryptionContext)
	if err != nil {
		if isKMSDown(ctx, err) {
			return fmt.Errorf("%w: re-encrypt: %w", ErrKMSUnavailable, err)
		}
		ev.Outcome, ev.Err, ev.NewVersion = OutcomeFailed, fmt.Errorf("%w: %w", ErrDecrypt, err), ev.KeyVersion
		return nil
	}
	nh, err := kmsclient.ParseCiphertextHeader(res.CiphertextBlob)
	if err != nil || nh.KeyID != ev.KeyID || nh.KeyVersion < primary {
		ev.Outcome, ev.Err, ev.NewVersion = OutcomeFailed, fmt.Errorf("%w: re-encrypt returned an unexpected ciphertext", ErrDecrypt), ev.KeyVersion
		return nil
	}
	b64 := encodeB64(res.CiphertextBlob)
	r.mu.Lock()
	r.renewed[old] = renewedValue{b64: b64, version: nh.KeyVersion}
	r.mu.Unlock()
	ev.Outcome, ev.NewVersion, *out = OutcomeRenewed, nh.KeyVersion, b64
	return nil
}

func encodeB64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
