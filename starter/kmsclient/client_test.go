package kmsclient

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

var okEncrypt = map[string]any{"key_id": "k1", "key_version": 2, "ciphertext_blob": []byte("blob")}

func TestSignatureVerifiedServerSide(t *testing.T) {
	d := newDouble(t, func(w http.ResponseWriter, r *http.Request, body []byte, _ int) {
		writeJSON(w, 200, okEncrypt)
	})
	tests := []struct {
		name string
		run  func(c *Client) error
	}{
		{"POST with body", func(c *Client) error {
			_, err := c.Encrypt(context.Background(), "alias/orders", []byte("hi"), map[string]string{"b": "2", "a": "1"})
			return err
		}},
		{"GET with sorted query", func(c *Client) error {
			_, err := c.ListKeys(context.Background(), ListKeysInput{Tag: "team:pay", Limit: 5, State: "Enabled"})
			return err
		}},
		{"POST without body", func(c *Client) error {
			_, err := c.EnableKey(context.Background(), "key 1/x")
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := d.count()
			if err := tt.run(d.client(t, nil)); err != nil {
				t.Fatalf("double rejected the request: %v", err)
			}
			if d.count() != before+1 {
				t.Fatalf("%d requests", d.count()-before)
			}
		})
	}

	// A wrong secret fails verification: 401, typed, not retried.
	before := d.count()
	c := d.client(t, func(cfg *Config) { cfg.SecretAccessKey = "wrong" })
	_, err := c.Encrypt(context.Background(), "k", []byte("x"), nil)
	if !errors.Is(err, ErrUnauthenticated) || IsRetryable(err) {
		t.Fatalf("wrong secret: %v", err)
	}
	if d.count() != before+1 {
		t.Fatalf("401 retried: %d requests", d.count()-before)
	}
}

func TestNonceAndBodyHash(t *testing.T) {
	d := newDouble(t, func(w http.ResponseWriter, r *http.Request, body []byte, attempt int) {
		if attempt < 2 {
			writeError(w, 503, CodeHSMUnavailable, "busy")
			return
		}
		writeJSON(w, 200, okEncrypt)
	})
	c := d.client(t, func(cfg *Config) { cfg.SendNonce = true })
	if _, err := c.Encrypt(context.Background(), "k", []byte("payload"), nil); err != nil {
		t.Fatal(err)
	}
	reqs := d.requests()
	if len(reqs) != 3 {
		t.Fatalf("%d attempts, want 3", len(reqs))
	}
	hexRe := regexp.MustCompile(`^[0-9a-f]{32}$`)
	seenNonce := map[string]bool{}
	seenAuth := map[string]bool{}
	for i, r := range reqs {
		n := r.Header.Get("X-Kms-Nonce")
		if !hexRe.MatchString(n) {
			t.Errorf("attempt %d: nonce %q", i, n)
		}
		if !slices.Contains(r.SignedHeaders, "x-kms-nonce") {
			t.Errorf("attempt %d: nonce not in SignedHeaders %v", i, r.SignedHeaders)
		}
		if seenNonce[n] {
			t.Errorf("attempt %d reused nonce", i)
		}
		seenNonce[n] = true
		if a := r.Header.Get("Authorization"); seenAuth[a] {
			t.Errorf("attempt %d reused a signature", i)
		} else {
			seenAuth[a] = true
		}
		sum := sha256.Sum256(r.Body)
		if got := r.Header.Get("X-Amz-Content-Sha256"); got != hex.EncodeToString(sum[:]) {
			t.Errorf("attempt %d: body hash header %s", i, got)
		}
		if !bytes.Equal(r.Body, reqs[0].Body) {
			t.Errorf("attempt %d sent a different body", i)
		}
	}

	// Without SendNonce there is no nonce; a GET signs the empty-body hash.
	c = d.client(t, nil)
	before := d.count()
	if _, err := c.ListAliases(context.Background(), ""); err != nil {
		t.Fatal(err)
	}
	r := d.requests()[before]
	if r.Header.Get("X-Kms-Nonce") != "" {
		t.Error("nonce sent without SendNonce")
	}
	if got := r.Header.Get("X-Amz-Content-Sha256"); got != "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" {
		t.Errorf("empty body hash %s", got)
	}
}

func TestRetriesTransientFaults(t *testing.T) {
	tests := []struct {
		status   int
		code     string
		failures int // attempts that fail before success; 99 = always
		want     int // attempts made
		ok       bool
		sentinel error
	}{
		{500, CodeInternal, 2, 3, true, nil},
		{503, CodeHSMUnavailable, 3, 4, true, nil},
		{429, CodeTooManyRequests, 1, 2, true, nil},
		{502, "", 1, 2, true, nil},
		{504, "", 1, 2, true, nil},
		{503, CodeHSMUnavailable, 99, 4, false, ErrHSMUnavailable},
		{500, CodeInternal, 99, 4, false, ErrInternal},
		{429, CodeTooManyRequests, 99, 4, false, ErrTooManyRequests},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d_%s_%d", tt.status, tt.code, tt.failures), func(t *testing.T) {
			d := newDouble(t, func(w http.ResponseWriter, r *http.Request, _ []byte, attempt int) {
				if attempt < tt.failures {
					if tt.code == "" {
						w.WriteHeader(tt.status) // a proxy's answer without a body
						return
					}
					writeError(w, tt.status, tt.code, "transient")
					return
				}
				writeJSON(w, 200, okEncrypt)
			})
			c := d.client(t, func(cfg *Config) { cfg.MaxRetries = 3 })
			var slept []time.Duration
			c.sleep = func(_ context.Context, dur time.Duration) error { slept = append(slept, dur); return nil }
			res, err := c.Encrypt(context.Background(), "k", []byte("x"), nil)
			if d.count() != tt.want {
				t.Fatalf("attempts = %d, want %d", d.count(), tt.want)
			}
			if len(slept) != tt.want-1 {
				t.Fatalf("backoff sleeps = %d, want %d", len(slept), tt.want-1)
			}
			for i, s := range slept {
				if ceiling := time.Millisecond << i; s < 0 || s >= min(ceiling, 5*time.Millisecond) {
					t.Errorf("sleep %d = %v outside [0, %v)", i, s, min(ceiling, 5*time.Millisecond))
				}
			}
			if tt.ok {
				if err != nil || res.KeyID != "k1" {
					t.Fatalf("res=%+v err=%v", res, err)
				}
				return
			}
			var ae *APIError
			if !errors.As(err, &ae) || ae.StatusCode != tt.status || !errors.Is(err, tt.sentinel) || !IsRetryable(err) {
				t.Fatalf("err = %#v", err)
			}
		})
	}
}

func TestNoRetryOn4xx(t *testing.T) {
	tests := []struct {
		status   int
		code     string
		sentinel error
	}{
		{400, CodeValidation, ErrValidation},
		{400, CodeInvalidCiphertext, ErrInvalidCiphertext},
		{401, CodeUnauthenticated, ErrUnauthenticated},
		{403, CodeAccessDenied, ErrAccessDenied},
		{404, CodeNotFound, ErrNotFound},
		{409, CodeAlreadyExists, ErrAlreadyExists},
		{409, CodeInvalidKeyState, ErrInvalidKeyState},
		{413, CodePayloadTooLarge, ErrPayloadTooLarge},
		// A decryption failure is never retried, even if a server
		// wrongly reports it as a 5xx.
		{500, CodeInvalidCiphertext, ErrInvalidCiphertext},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.status, tt.code), func(t *testing.T) {
			d := newDouble(t, func(w http.ResponseWriter, r *http.Request, _ []byte, _ int) {
				writeError(w, tt.status, tt.code, "nope")
			})
			c := d.client(t, func(cfg *Config) { cfg.MaxRetries = 5 })
			_, err := c.Decrypt(context.Background(), []byte("blob"), nil)
			if d.count() != 1 {
				t.Fatalf("attempts = %d, want 1", d.count())
			}
			var ae *APIError
			if !errors.As(err, &ae) {
				t.Fatalf("err = %v, want *APIError", err)
			}
			want := APIError{StatusCode: tt.status, Code: tt.code, Message: "nope", RequestID: "req-1"}
			if ae.StatusCode != want.StatusCode || ae.Code != want.Code || ae.Message != want.Message || ae.RequestID != want.RequestID {
				t.Fatalf("got %+v, want %+v", *ae, want)
			}
			if !errors.Is(err, tt.sentinel) || IsRetryable(err) {
				t.Fatalf("errors.Is(%v) = false or retryable", tt.sentinel)
			}
			for _, other := range []error{ErrNotFound, ErrValidation, ErrInvalidCiphertext, ErrAccessDenied} {
				if other != tt.sentinel && errors.Is(err, other) {
					t.Fatalf("also matches %v", other)
				}
			}
		})
	}
}

func TestRetriesNetworkErrors(t *testing.T) {
	hangUp := func(w http.ResponseWriter) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	}
	t.Run("recovers", func(t *testing.T) {
		d := newDouble(t, func(w http.ResponseWriter, r *http.Request, _ []byte, attempt int) {
			if attempt < 2 {
				hangUp(w)
				return
			}
			writeJSON(w, 200, map[string]any{"plaintext": []byte{1, 2, 3}})
		})
		b, err := d.client(t, nil).GenerateRandom(context.Background(), 3)
		if err != nil || !bytes.Equal(b, []byte{1, 2, 3}) {
			t.Fatalf("%x %v", b, err)
		}
		if d.count() != 3 {
			t.Fatalf("attempts = %d", d.count())
		}
	})
	t.Run("gives up", func(t *testing.T) {
		d := newDouble(t, func(w http.ResponseWriter, r *http.Request, _ []byte, _ int) { hangUp(w) })
		_, err := d.client(t, func(cfg *Config) { cfg.MaxRetries = 2 }).GenerateRandom(context.Background(), 3)
		if !IsRetryable(err) {
			t.Fatalf("network error not retryable: %v", err)
		}
		var ae *APIError
		if errors.As(err, &ae) {
			t.Fatal("network error reported as APIError")
		}
		if d.count() != 3 {
			t.Fatalf("attempts = %d, want 3", d.count())
		}
	})
	t.Run("connection refused", func(t *testing.T) {
		d := newDouble(t, nil)
		c := d.client(t, func(cfg *Config) { cfg.MaxRetries = 2 })
		d.srv.Close()
		var slept int
		c.sleep = func(context.Context, time.Duration) error { slept++; return nil }
		if _, err := c.GenerateRandom(context.Background(), 3); !IsRetryable(err) || slept != 2 {
			t.Fatalf("err=%v sleeps=%d", err, slept)
		}
	})
}

func TestAttemptTimeoutIsRetried(t *testing.T) {
	d := newDouble(t, func(w http.ResponseWriter, r *http.Request, _ []byte, attempt int) {
		if attempt == 0 {
			select { // stall the first attempt past the client's timeout
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
			return
		}
		writeJSON(w, 200, map[string]any{"plaintext": []byte{9}})
	})
	c := d.client(t, func(cfg *Config) { cfg.Timeout = 100 * time.Millisecond })
	start := time.Now()
	b, err := c.GenerateRandom(context.Background(), 1)
	if err != nil || !bytes.Equal(b, []byte{9}) {
		t.Fatalf("%x %v", b, err)
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Fatalf("took %v: attempt timeout not applied", el)
	}
	if d.count() != 2 {
		t.Fatalf("attempts = %d", d.count())
	}
}

func TestContextStopsRetries(t *testing.T) {
	t.Run("cancel during backoff", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		d := newDouble(t, func(w http.ResponseWriter, r *http.Request, _ []byte, _ int) {
			cancel() // the caller gives up while the client would back off
			writeError(w, 503, CodeHSMUnavailable, "down")
		})
		c := d.client(t, func(cfg *Config) {
			cfg.MaxRetries = 10
			cfg.RetryBaseDelay = 10 * time.Second
			cfg.RetryMaxDelay = 10 * time.Second
		})
		start := time.Now()
		_, err := c.Encrypt(ctx, "k", []byte("x"), nil)
		if !errors.Is(err, context.Canceled) || IsRetryable(err) {
			t.Fatalf("err = %v", err)
		}
		if time.Since(start) > 2*time.Second || d.count() != 1 {
			t.Fatalf("kept going: %v, %d attempts", time.Since(start), d.count())
		}
	})
	t.Run("deadline shorter than backoff", func(t *testing.T) {
		d := newDouble(t, func(w http.ResponseWriter, r *http.Request, _ []byte, _ int) {
			w.Header().Set("Retry-After", "20")
			writeError(w, 503, CodeHSMUnavailable, "down")
		})
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		start := time.Now()
		_, err := d.client(t, nil).Encrypt(ctx, "k", []byte("x"), nil)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v", err)
		}
		if time.Since(start) > time.Second || d.count() != 1 {
			t.Fatalf("waited for a retry that could not happen: %v, %d attempts", time.Since(start), d.count())
		}
	})
	t.Run("already cancelled", func(t *testing.T) {
		d := newDouble(t, func(w http.ResponseWriter, r *http.Request, _ []byte, _ int) { writeJSON(w, 200, okEncrypt) })
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := d.client(t, nil).Encrypt(ctx, "k", nil, nil); !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v", err)
		}
		if d.count() != 0 {
			t.Fatalf("sent %d requests on a cancelled context", d.count())
		}
	})
}

func TestRetryAfterHonoured(t *testing.T) {
	tests := []struct {
		name   string
		status int
		header func(now time.Time) string
		want   time.Duration
	}{
		{"503 seconds", 503, func(time.Time) string { return "2" }, 2 * time.Second},
		{"429 seconds", 429, func(time.Time) string { return "1" }, time.Second},
		{"429 date", 429, func(now time.Time) string { return now.Add(3 * time.Second).UTC().Format(http.TimeFormat) }, 3 * time.Second},
		{"capped", 503, func(time.Time) string { return "3600" }, MaxRetryAfter},
		{"ignored on 500", 500, func(time.Time) string { return "9" }, 0},
	}
	now := time.Now().Truncate(time.Second)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDouble(t, func(w http.ResponseWriter, r *http.Request, _ []byte, attempt int) {
				if attempt == 0 {
					w.Header().Set("Retry-After", tt.header(now))
					writeError(w, tt.status, "", "later")
					return
				}
				writeJSON(w, 200, okEncrypt)
			})
			c := d.client(t, nil)
			c.now = func() time.Time { return now }
			var slept []time.Duration
			c.sleep = func(_ context.Context, dur time.Duration) error { slept = append(slept, dur); return nil }
			if _, err := c.Encrypt(context.Background(), "k", nil, nil); err != nil {
				t.Fatal(err)
			}
			if len(slept) != 1 {
				t.Fatalf("sleeps %v", slept)
			}
			if tt.want == 0 {
				if slept[0] >= 5*time.Millisecond {
					t.Fatalf("slept %v, want plain backoff", slept[0])
				}
				return
			}
			if slept[0] != tt.want {
				t.Fatalf("slept %v, want %v", slept[0], tt.want)
			}
		})
	}
	t.Run("real wait", func(t *testing.T) {
		d := newDouble(t, func(w http.ResponseWriter, r *http.Request, _ []byte, attempt int) {
			if attempt == 0 {
				w.Header().Set("Retry-After", "1")
				writeError(w, 503, CodeHSMUnavailable, "busy")
				return
			}
			writeJSON(w, 200, okEncrypt)
		})
		start := time.Now()
		if _, err := d.client(t, nil).Encrypt(context.Background(), "k", nil, nil); err != nil {
			t.Fatal(err)
		}
		if el := time.Since(start); el < time.Second {
			t.Fatalf("retried after %v, before Retry-After", el)
		}
	})
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"0", 0},
		{"5", 5 * time.Second},
		{" 7 ", 7 * time.Second},
		{"-3", 0},
		{"1.5", 0},
		{"99999999999", 0},
		{"31", MaxRetryAfter},
		{now.Add(10 * time.Second).Format(http.TimeFormat), 10 * time.Second},
		{now.Add(-10 * time.Second).Format(http.TimeFormat), 0},
		{"soon", 0},
	}
	for _, tt := range tests {
		if got := parseRetryAfter(tt.in, now); got != tt.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestBackoffFullJitter(t *testing.T) {
	c, err := New(Config{Endpoint: "http://x", AccessKeyID: "a", SecretAccessKey: "b",
		RetryBaseDelay: 10 * time.Millisecond, RetryMaxDelay: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	for n := range 70 {
		ceiling := min(300*time.Millisecond, 10*time.Millisecond<<min(n, 10))
		distinct := map[time.Duration]bool{}
		var maxSeen time.Duration
		for range 200 {
			d := c.backoff(n)
			if d < 0 || d >= ceiling {
				t.Fatalf("backoff(%d) = %v outside [0, %v)", n, d, ceiling)
			}
			distinct[d] = true
			maxSeen = max(maxSeen, d)
		}
		if len(distinct) < 50 {
			t.Fatalf("backoff(%d): only %d distinct values: no jitter", n, len(distinct))
		}
		if maxSeen < ceiling/2 {
			t.Fatalf("backoff(%d) never above %v: not growing to %v", n, maxSeen, ceiling)
		}
	}
}

func TestErrorDecoding(t *testing.T) {
	tests := []struct {
		name     string
		status   int
		body     string
		header   string
		want     APIError
		sentinel error
	}{
		{"documented shape", 404, `{"error":{"code":"NotFound","message":"no key","request_id":"r1"}}`, "h1",
			APIError{404, CodeNotFound, "no key", "r1", 0}, ErrNotFound},
		{"request id from header", 403, `{"error":{"code":"AccessDenied","message":"m"}}`, "h2",
			APIError{403, CodeAccessDenied, "m", "h2", 0}, ErrAccessDenied},
		{"html from a proxy", 502, `<html>bad gateway</html>`, "",
			APIError{502, "", "", "", 0}, nil},
		{"empty 503 maps by status", 503, ``, "",
			APIError{503, "", "", "", 0}, ErrHSMUnavailable},
		{"unknown code", 400, `{"error":{"code":"Weird","message":"?"}}`, "",
			APIError{400, "Weird", "?", "", 0}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := decodeAPIError(tt.status, tt.header, []byte(tt.body))
			if *got != tt.want {
				t.Fatalf("got %+v, want %+v", *got, tt.want)
			}
			for _, s := range []error{ErrNotFound, ErrAccessDenied, ErrHSMUnavailable, ErrValidation, ErrInternal} {
				if errors.Is(got, s) != (s == tt.sentinel) {
					t.Errorf("errors.Is(%v) = %v", s, errors.Is(got, s))
				}
			}
		})
	}
	long := decodeAPIError(400, "", []byte(`{"error":{"code":"ValidationError","message":"`+strings.Repeat("é", 1000)+`"}}`))
	if len(long.Message) > maxMessageLen+4 || !strings.HasSuffix(long.Message, "…") || !json.Valid([]byte(`"`+long.Message+`"`)) {
		t.Fatalf("message not truncated cleanly: %d bytes", len(long.Message))
	}
	e := &APIError{StatusCode: 404, Code: CodeNotFound, Message: "no key", RequestID: "r1"}
	if e.Error() != "kmsclient: 404 NotFound: no key (request r1)" {
		t.Fatalf("Error() = %q", e.Error())
	}
	if (&APIError{StatusCode: 502}).Error() != "kmsclient: 502 Bad Gateway" {
		t.Fatalf("Error() = %q", (&APIError{StatusCode: 502}).Error())
	}
}

func TestIsRetryable(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{nil, false},
		{&APIError{StatusCode: 500}, true},
		{&APIError{StatusCode: 503, Code: CodeHSMUnavailable}, true},
		{&APIError{StatusCode: 429, Code: CodeTooManyRequests}, true},
		{&APIError{StatusCode: 400, Code: CodeValidation}, false},
		{&APIError{StatusCode: 400, Code: CodeInvalidCiphertext}, false},
		{&APIError{StatusCode: 503, Code: CodeInvalidCiphertext}, false},
		{&APIError{StatusCode: 404}, false},
		{&APIError{StatusCode: 409}, false},
		{fmt.Errorf("wrapped: %w", &APIError{StatusCode: 502}), true},
		{&transportError{err: errors.New("connection reset")}, true},
		{context.Canceled, false},
		{context.DeadlineExceeded, false},
		{ErrInvalidArgument, false},
		{ErrMalformedResponse, false},
	}
	for i, tt := range tests {
		if got := IsRetryable(tt.err); got != tt.want {
			t.Errorf("%d: IsRetryable(%v) = %v", i, tt.err, got)
		}
	}
}

func TestMalformedResponseNotRetriedNorLeaked(t *testing.T) {
	d := newDouble(t, func(w http.ResponseWriter, r *http.Request, _ []byte, _ int) {
		w.WriteHeader(200)
		_, _ = w.Write([]byte(`{"key_id":"k","plaintext":"TOPSECRET!!"}`))
	})
	_, err := d.client(t, nil).Decrypt(context.Background(), []byte("b"), nil)
	if !errors.Is(err, ErrMalformedResponse) || IsRetryable(err) {
		t.Fatalf("err = %v", err)
	}
	if strings.Contains(err.Error(), "TOPSECRET") {
		t.Fatalf("error leaks response bytes: %v", err)
	}
	if d.count() != 1 {
		t.Fatalf("attempts = %d", d.count())
	}
}

func TestConfig(t *testing.T) {
	valid := Config{Endpoint: "https://kms.example:8443/base/", AccessKeyID: "AK", SecretAccessKey: "SK"}
	tests := []struct {
		name string
		mod  func(*Config)
		ok   bool
	}{
		{"valid", func(*Config) {}, true},
		{"no endpoint", func(c *Config) { c.Endpoint = "" }, false},
		{"bad scheme", func(c *Config) { c.Endpoint = "ftp://x" }, false},
		{"no host", func(c *Config) { c.Endpoint = "http://" }, false},
		{"query", func(c *Config) { c.Endpoint = "http://x/?a=b" }, false},
		{"user info", func(c *Config) { c.Endpoint = "http://u:p@x" }, false},
		{"no access key", func(c *Config) { c.AccessKeyID = "" }, false},
		{"no secret", func(c *Config) { c.SecretAccessKey = "" }, false},
		{"negative timeout", func(c *Config) { c.Timeout = -1 }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := valid
			tt.mod(&cfg)
			c, err := New(cfg)
			if tt.ok != (err == nil) || (err != nil && !errors.Is(err, ErrInvalidConfig)) {
				t.Fatalf("err = %v", err)
			}
			if err != nil && strings.Contains(err.Error(), "SK") {
				t.Fatal("error mentions the secret")
			}
			if c != nil && (c.region != "local" || c.timeout != DefaultTimeout || c.maxRetries != DefaultMaxRetries || c.base.Path != "/base") {
				t.Fatalf("defaults: %+v", c)
			}
		})
	}
	c, _ := New(Config{Endpoint: "http://x", AccessKeyID: "a", SecretAccessKey: "b", MaxRetries: -1})
	if c.maxRetries != 0 {
		t.Fatalf("negative MaxRetries gives %d retries", c.maxRetries)
	}
	secret := Config{Endpoint: "http://x", AccessKeyID: "AKID", SecretAccessKey: "very-secret-value"}
	for _, f := range []string{"%v", "%+v", "%#v", "%s"} {
		if s := fmt.Sprintf(f, secret); strings.Contains(s, "very-secret-value") || !strings.Contains(s, "AKID") {
			t.Errorf("%s: %s", f, s)
		}
	}
}

func TestEndpointPathPrefix(t *testing.T) {
	d := newDouble(t, func(w http.ResponseWriter, r *http.Request, _ []byte, _ int) {
		writeJSON(w, 200, map[string]any{"key_id": "k"})
	})
	c := d.client(t, func(cfg *Config) { cfg.Endpoint = d.srv.URL + "/gateway/kms/" })
	if _, err := c.DescribeKey(context.Background(), "abc"); err != nil {
		t.Fatal(err)
	}
	if p := d.requests()[0].Path; p != "/gateway/kms/v1/keys/abc" {
		t.Fatalf("path %s", p)
	}
}

func TestConcurrentCalls(t *testing.T) {
	d := newDouble(t, func(w http.ResponseWriter, r *http.Request, body []byte, attempt int) {
		if attempt%3 == 0 {
			writeError(w, 503, CodeHSMUnavailable, "busy")
			return
		}
		writeJSON(w, 200, okEncrypt)
	})
	c := d.client(t, func(cfg *Config) { cfg.SendNonce = true; cfg.MaxRetries = 10 })
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 10 {
				if _, err := c.Encrypt(context.Background(), "k", []byte("secret"), nil); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	nonces := map[string]bool{}
	for _, r := range d.requests() {
		n := r.Header.Get("X-Kms-Nonce")
		if nonces[n] {
			t.Fatal("nonce reused across concurrent requests")
		}
		nonces[n] = true
	}
}
