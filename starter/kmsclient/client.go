package kmsclient

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kmsgo/kmsgo/starter/sigv4"
)

// Defaults of Config.
const (
	DefaultRegion         = "local"
	DefaultTimeout        = 10 * time.Second
	DefaultMaxRetries     = 3
	DefaultRetryBaseDelay = 50 * time.Millisecond
	DefaultRetryMaxDelay  = 2 * time.Second

	// MaxRetryAfter caps how long a server's Retry-After can make the
	// client wait before one retry.
	MaxRetryAfter = 30 * time.Second
)

// Limits on what the client reads back.
const (
	maxResponseBytes = 16 << 20
	maxErrorBytes    = 64 << 10
)

// Config configures a Client. Endpoint, AccessKeyID and SecretAccessKey are
// required; every other zero value means its default.
type Config struct {
	// Endpoint is the base URL of kmsd, e.g. "https://kms.internal:8443".
	// A path prefix is kept ("https://gw/kms" calls "https://gw/kms/v1/...").
	Endpoint string
	// AccessKeyID and SecretAccessKey are the SigV4 credentials.
	AccessKeyID     string
	SecretAccessKey string
	// Region is the SigV4 region. Default "local".
	Region string
	// HTTPClient sends the requests. Default: a client on a clone of
	// http.DefaultTransport that does not follow redirects.
	HTTPClient *http.Client
	// Timeout bounds each attempt (connect, send, read the answer). The
	// whole call, retries included, is bounded by the caller's context.
	// Default 10s.
	Timeout time.Duration
	// MaxRetries is the number of retries after the first attempt for
	// transient faults (network errors, 429, 5xx). 0 means the default (3);
	// a negative value disables retries.
	MaxRetries int
	// RetryBaseDelay and RetryMaxDelay shape the exponential backoff with
	// full jitter: before retry n the client sleeps a random duration in
	// [0, min(RetryMaxDelay, RetryBaseDelay*2^n)), or longer if the server
	// sent Retry-After (capped at MaxRetryAfter). Defaults 50ms and 2s.
	RetryBaseDelay time.Duration
	RetryMaxDelay  time.Duration
	// SendNonce adds a fresh random X-Kms-Nonce header, included in the
	// signature, to every attempt (replay protection; a kmsd setting can
	// require it).
	SendNonce bool
	// UserAgent is sent as User-Agent. Default "kmsgo-kmsclient".
	UserAgent string
}

// String describes c without the secret key, so that a Config that ends up
// in a log line does not leak it.
func (c Config) String() string {
	secret := ""
	if c.SecretAccessKey != "" {
		secret = "REDACTED"
	}
	return fmt.Sprintf("kmsclient.Config{Endpoint:%q AccessKeyID:%q SecretAccessKey:%s Region:%q Timeout:%s MaxRetries:%d SendNonce:%t}",
		c.Endpoint, c.AccessKeyID, secret, c.Region, c.Timeout, c.MaxRetries, c.SendNonce)
}

// GoString is String, for %#v.
func (c Config) GoString() string { return c.String() }

// Client talks to kmsd. It is safe for concurrent use.
type Client struct {
	base       *url.URL
	region     string
	hc         *http.Client
	signer     *sigv4Signer
	timeout    time.Duration
	maxRetries int
	baseDelay  time.Duration
	maxDelay   time.Duration
	sendNonce  bool
	userAgent  string

	// Hooks for tests.
	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) error
}

// New validates cfg and returns a Client. Errors match ErrInvalidConfig.
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(cfg.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("%w: Endpoint must be an http(s) URL without query or user info", ErrInvalidConfig)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = ""
	if cfg.AccessKeyID == "" || cfg.SecretAccessKey == "" {
		return nil, fmt.Errorf("%w: AccessKeyID and SecretAccessKey are required", ErrInvalidConfig)
	}
	if cfg.Timeout < 0 || cfg.RetryBaseDelay < 0 || cfg.RetryMaxDelay < 0 {
		return nil, fmt.Errorf("%w: negative duration", ErrInvalidConfig)
	}
	c := &Client{
		base:       u,
		region:     cfg.Region,
		hc:         cfg.HTTPClient,
		signer:     &sigv4Signer{accessKeyID: cfg.AccessKeyID, secret: cfg.SecretAccessKey},
		timeout:    cfg.Timeout,
		maxRetries: cfg.MaxRetries,
		baseDelay:  cfg.RetryBaseDelay,
		maxDelay:   cfg.RetryMaxDelay,
		sendNonce:  cfg.SendNonce,
		userAgent:  cfg.UserAgent,
		now:        time.Now,
		sleep:      sleepCtx,
	}
	if c.region == "" {
		c.region = DefaultRegion
	}
	if c.hc == nil {
		c.hc = &http.Client{
			Transport: http.DefaultTransport.(*http.Transport).Clone(),
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		}
	}
	if c.timeout == 0 {
		c.timeout = DefaultTimeout
	}
	switch {
	case c.maxRetries == 0:
		c.maxRetries = DefaultMaxRetries
	case c.maxRetries < 0:
		c.maxRetries = 0
	}
	if c.baseDelay == 0 {
		c.baseDelay = DefaultRetryBaseDelay
	}
	if c.maxDelay == 0 {
		c.maxDelay = DefaultRetryMaxDelay
	}
	if c.maxDelay < c.baseDelay {
		c.maxDelay = c.baseDelay
	}
	if c.userAgent == "" {
		c.userAgent = "kmsgo-kmsclient"
	}
	return c, nil
}

// call is one API operation.
type call struct {
	method string
	path   string     // API path, already escaped, e.g. "/v1/keys/abc"
	query  url.Values // optional
	in     any        // JSON request body; nil for none
	out    any        // decoded from a 2xx JSON body; nil to discard
	// secretBody marks a request body that carries plaintext; its buffer is
	// cleared when the call returns.
	secretBody bool
	// long: the answer may take longer than Config.Timeout (a job run);
	// only the caller's context bounds the attempt, and it is not retried
	// (a retry could run the operation twice).
	long bool
}

// do runs c with signing, per-attempt timeouts and retries.
func (c *Client) do(ctx context.Context, op call) error {
	if p, _, _ := strings.Cut(op.path, "?"); strings.Contains(p, "//") || strings.HasSuffix(p, "/") {
		return fmt.Errorf("%w: empty id or name in %s", ErrInvalidArgument, p)
	}
	var body []byte
	if op.in != nil {
		var err error
		body, err = json.Marshal(op.in)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrInvalidArgument, err)
		}
	}
	buf := newBodyBuffer(body, op.secretBody, c.hc.Transport)
	if op.secretBody {
		defer buf.wipe()
	}
	payloadHash := sigv4.HexSHA256(body)

	u := *c.base
	rawPath := c.base.EscapedPath() + op.path
	u.Path, _ = url.PathUnescape(rawPath) // op.path is built from escaped segments
	u.RawPath = rawPath
	u.RawQuery = op.query.Encode()
	target := u.String()

	var lastErr error
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			delay := c.backoff(attempt - 1)
			var ae *APIError
			if errors.As(lastErr, &ae) {
				if ra := ae.retryAfter; ra > delay {
					delay = min(ra, MaxRetryAfter)
				}
			}
			if dl, ok := ctx.Deadline(); ok && time.Until(dl) < delay {
				return fmt.Errorf("kmsclient: %s %s: %w before retry %d (last error: %v)", op.method, op.path, context.DeadlineExceeded, attempt, lastErr)
			}
			if err := c.sleep(ctx, delay); err != nil {
				return fmt.Errorf("kmsclient: %s %s: %w before retry %d (last error: %v)", op.method, op.path, err, attempt, lastErr)
			}
		}
		err := c.attempt(ctx, op, target, buf, payloadHash)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			// The caller gave up; do not report it as a transient fault.
			return fmt.Errorf("kmsclient: %s %s: %w (last error: %v)", op.method, op.path, ctx.Err(), err)
		}
		lastErr = err
		if !IsRetryable(err) || attempt >= c.maxRetries || op.long {
			return err
		}
	}
}

// attempt sends one signed request and decodes its answer.
func (c *Client) attempt(ctx context.Context, op call, target string, body *bodyBuffer, payloadHash string) error {
	var actx context.Context
	var cancel context.CancelFunc
	if op.long {
		actx, cancel = context.WithCancel(ctx)
	} else {
		actx, cancel = context.WithTimeout(ctx, c.timeout)
	}
	defer cancel()

	if tr := body.trace(); tr != nil {
		actx = httptrace.WithClientTrace(actx, tr)
	}
	req, err := http.NewRequestWithContext(actx, op.method, target, http.NoBody)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidArgument, err)
	}
	if len(body.b) > 0 {
		req.Body = body.reader()
		req.GetBody = func() (io.ReadCloser, error) { return body.reader(), nil }
		req.ContentLength = int64(len(body.b))
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("X-Amz-Content-Sha256", payloadHash)
	if c.sendNonce {
		n, err := newNonce()
		if err != nil {
			return err
		}
		req.Header.Set("X-Kms-Nonce", n)
	}
	// Set after signing: the signer skips User-Agent anyway.
	c.signer.sign(req, payloadHash, "kms", c.region, c.now())
	req.Header.Set("User-Agent", c.userAgent)

	resp, err := c.hc.Do(req)
	if err != nil {
		return &transportError{err: err}
	}
	defer resp.Body.Close()

	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		raw, err := io.ReadAll(io.LimitReader(resp.Body, maxErrorBytes))
		if err != nil && resp.StatusCode < 500 && resp.StatusCode != http.StatusTooManyRequests {
			// The status is known; a broken error body does not change it.
			err = nil
		}
		if err != nil {
			return &transportError{err: err}
		}
		ae := decodeAPIError(resp.StatusCode, resp.Header.Get("X-Request-Id"), raw)
		if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
			ae.retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), c.now())
		}
		return ae
	}

	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		clear(raw)
		return &transportError{err: err}
	}
	defer clear(raw) // may hold base64 plaintext
	if len(raw) > maxResponseBytes {
		return fmt.Errorf("%w: body over %d bytes", ErrMalformedResponse, maxResponseBytes)
	}
	if op.out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	if err := decodeResponse(raw, op.out); err != nil {
		return fmt.Errorf("%w: %s %s: %v", ErrMalformedResponse, op.method, op.path, redactJSONError(err))
	}
	return nil
}

// redactJSONError keeps the kind of a decoding failure but not the bytes
// around it, which may be plaintext.
func redactJSONError(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("invalid JSON at offset %d", se.Offset)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("field %q: unexpected %s", te.Field, te.Value)
	}
	var ce base64.CorruptInputError
	if errors.As(err, &ce) {
		return "bad base64"
	}
	return "cannot decode"
}

// backoff is the full-jitter delay before retry n (0-based).
func (c *Client) backoff(n int) time.Duration {
	ceiling := c.maxDelay
	if n < 62 {
		if d := c.baseDelay << n; d > 0 && d < ceiling {
			ceiling = d
		}
	}
	if ceiling <= 0 {
		return 0
	}
	return time.Duration(randUint64() % uint64(ceiling))
}

// parseRetryAfter reads delay-seconds or an HTTP date. Unparseable or
// negative values yield 0.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseUint(v, 10, 32); err == nil {
		return min(time.Duration(secs)*time.Second, MaxRetryAfter)
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return min(d, MaxRetryAfter)
		}
	}
	return 0
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// newNonce returns 32 hex characters from crypto/rand.
func newNonce() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("kmsclient: nonce: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

func randUint64() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
	return binary.LittleEndian.Uint64(b[:])
}

// bodyBuffer holds a request body shared by the attempts of one call.
//
// Attempts send it as a *bytes.Reader: net/http writes such a body in the
// same write as the headers, while any other body type makes it flush the
// headers first, a second write and TCP segment per request on both ends.
//
// A body that carries plaintext is cleared by wipe once the call is over,
// but never while a transport may still be reading it (a RoundTripper may
// read the body after it returned, e.g. when the server answered early).
// On an *http.Transport, which reports its writes through httptrace, wipe
// counts the connections handed a request (GotConn) against the writes that
// ended (WroteRequest), and whichever of wipe and the last WroteRequest
// comes second clears the buffer; a connection obtained but never written to
// (it broke first) leaves the buffer to the garbage collector uncleared
// rather than risk clearing it under a reader. Any other RoundTripper gets a
// reader that copies under the buffer's lock and fails once it is wiped.
type bodyBuffer struct {
	b       []byte
	tracked bool // secret body on an *http.Transport: cleared by write tracking
	locked  bool // secret body on another RoundTripper: read under mu

	mu      sync.Mutex
	writing int  // requests on a connection whose write has not ended
	done    bool // wipe was called
}

// newBodyBuffer returns b as the body of a call sent through rt.
func newBodyBuffer(b []byte, secret bool, rt http.RoundTripper) *bodyBuffer {
	buf := &bodyBuffer{b: b}
	if secret {
		if _, ok := rt.(*http.Transport); ok || rt == nil {
			buf.tracked = true
		} else {
			buf.locked = true
		}
	}
	return buf
}

// reader returns a fresh reader of the whole body.
func (b *bodyBuffer) reader() io.ReadCloser {
	if b.locked {
		return &lockedReader{buf: b}
	}
	return io.NopCloser(bytes.NewReader(b.b))
}

// trace returns the hooks that tell wipe when no write is reading b, or
// nil when b is not tracked.
func (b *bodyBuffer) trace() *httptrace.ClientTrace {
	if !b.tracked {
		return nil
	}
	return &httptrace.ClientTrace{
		GotConn: func(httptrace.GotConnInfo) {
			b.mu.Lock()
			b.writing++
			b.mu.Unlock()
		},
		WroteRequest: func(httptrace.WroteRequestInfo) {
			b.mu.Lock()
			defer b.mu.Unlock()
			if b.writing > 0 {
				b.writing--
			}
			if b.done && b.writing == 0 {
				clear(b.b)
			}
		},
	}
}

// wipe clears the body now, or when the last write still reading it ends.
func (b *bodyBuffer) wipe() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.done = true
	if b.writing == 0 {
		clear(b.b)
	}
}

// lockedReader reads a bodyBuffer under its lock, so that wipe never clears
// it under a read.
type lockedReader struct {
	buf *bodyBuffer
	off int
}

func (r *lockedReader) Read(p []byte) (int, error) {
	r.buf.mu.Lock()
	defer r.buf.mu.Unlock()
	if r.buf.done {
		return 0, errors.New("kmsclient: request body released")
	}
	if r.off >= len(r.buf.b) {
		return 0, io.EOF
	}
	n := copy(p, r.buf.b[r.off:])
	r.off += n
	return n, nil
}

func (r *lockedReader) Close() error { return nil }
