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
// nothing must be written). The report's Documents is 1.
func (r *Renewal) RenewText(ctx context.Context, name string, text []byte) (out []byte, rep RenewReport, err error) {
	rep.DryRun = r.opts.DryRun
	rep.Documents = 1
	s := string(text)
	markers := scanText(s, r.opts.Marker)
	if len(markers) == 0 {
		return text, rep, nil
	}
	var b strings.Builder
	b.Grow(len(s))
	last := 0
	for _, m := range markers {
		rep.Scanned++
		ev := RenewEvent{Document: name, Line: m.line}
		newB64, err := r.renewOne(ctx, m, &ev)
		if err != nil {
			return nil, RenewReport{}, err
		}
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
		if newB64 != "" {
			b.WriteString(s[last:m.start])
			b.WriteString(newB64)
			last = m.end
		}
	}
	b.WriteString(s[last:])
	return []byte(b.String()), rep, nil
}

// renewOne decides on one marker and fills ev; it returns the new base64
// content when the marker is to be replaced.
func (r *Renewal) renewOne(ctx context.Context, m textMarker, ev *RenewEvent) (string, error) {
	fail := func(err error) (string, error) {
		ev.Outcome, ev.Err = OutcomeFailed, err
		return "", nil
	}
	if m.err != nil {
		return fail(m.err)
	}
	h, err := kmsclient.ParseCiphertextHeader(m.blob)
	if err != nil {
		return fail(fmt.Errorf("%w: not a kmsd ciphertext", ErrDecrypt))
	}
	ev.KeyID, ev.KeyVersion, ev.NewVersion = h.KeyID, h.KeyVersion, h.KeyVersion
	primary, err := r.primaryOf(ctx, h.KeyID)
	if err != nil {
		if isKMSDown(ctx, err) {
			return "", fmt.Errorf("%w: describe key %s: %w", ErrKMSUnavailable, h.KeyID, err)
		}
		return fail(fmt.Errorf("describe key: %w", err))
	}
	if h.KeyVersion >= primary {
		ev.Outcome = OutcomeSkipped
		return "", nil
	}
	if r.opts.DryRun {
		ev.Outcome, ev.NewVersion = OutcomeWouldRenew, primary
		return "", nil
	}
	old := string(m.blob)
	r.mu.Lock()
	done, ok := r.renewed[old]
	r.mu.Unlock()
	if ok {
		ev.Outcome, ev.NewVersion = OutcomeRenewed, done.version
		return done.b64, nil
	}
	res, err := r.opts.Client.ReEncrypt(ctx, m.blob, r.opts.EncryptionContext, h.KeyID, r.opts.EncryptionContext)
	if err != nil {
		if isKMSDown(ctx, err) {
			return "", fmt.Errorf("%w: re-encrypt: %w", ErrKMSUnavailable, err)
		}
		return fail(fmt.Errorf("%w: %w", ErrDecrypt, err))
	}
	nh, err := kmsclient.ParseCiphertextHeader(res.CiphertextBlob)
	if err != nil || nh.KeyID != h.KeyID || nh.KeyVersion < primary {
		return fail(fmt.Errorf("%w: re-encrypt returned an unexpected ciphertext", ErrDecrypt))
	}
	newB64 := encodeB64(res.CiphertextBlob)
	r.mu.Lock()
	r.renewed[old] = renewedValue{b64: newB64, version: nh.KeyVersion}
	r.mu.Unlock()
	ev.Outcome, ev.NewVersion = OutcomeRenewed, nh.KeyVersion
	return newB64, nil
}

func encodeB64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
