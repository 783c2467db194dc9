package envelope

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/kmsgo/kmsgo/server/kmstest"
	"github.com/kmsgo/kmsgo/starter/kmsclient"
	"github.com/kmsgo/kmsgo/starter/kmsclient/dkcache"
)

// countingTransport counts the requests a client sends to kmsd, per path.
type countingTransport struct {
	base  http.RoundTripper
	calls atomic.Int64
	paths map[string]*atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.calls.Add(1)
	if n, ok := c.paths[r.URL.Path]; ok {
		n.Add(1)
	}
	return c.base.RoundTrip(r)
}

type testEnv struct {
	srv    *kmstest.Server
	client *kmsclient.Client
	calls  *countingTransport
	keyA   string
	keyB   string
}

// setup starts a real in-process kmsd with two master keys.
func setup(t testing.TB) *testEnv {
	t.Helper()
	srv := kmstest.Start(t)
	ct := &countingTransport{base: http.DefaultTransport.(*http.Transport).Clone(), paths: map[string]*atomic.Int64{}}
	for _, p := range []string{"/v1/generate-data-key", "/v1/encrypt", "/v1/decrypt", "/v1/re-encrypt"} {
		ct.paths[p] = new(atomic.Int64)
	}
	c, err := kmsclient.New(kmsclient.Config{Endpoint: srv.URL, AccessKeyID: srv.AccessKeyID,
		SecretAccessKey: srv.SecretAccessKey, Region: srv.Region, HTTPClient: &http.Client{Transport: ct}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	a, err := c.CreateKey(ctx, kmsclient.CreateKeyInput{Alias: "alias/stream-a"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.CreateKey(ctx, kmsclient.CreateKeyInput{Alias: "alias/stream-b"})
	if err != nil {
		t.Fatal(err)
	}
	return &testEnv{srv: srv, client: c, calls: ct, keyA: a.KeyID, keyB: b.KeyID}
}

func (e *testEnv) cached(t testing.TB) *kmsclient.Cached {
	t.Helper()
	cc, err := kmsclient.NewCached(e.client, kmsclient.CacheConfig{})
	if err != nil {
		t.Fatal(err)
	}
	return cc
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// seal encrypts pt into a new stream.
func seal(t testing.TB, c *Codec, keyID string, pt []byte, opts WriterOptions) []byte {
	t.Helper()
	var out bytes.Buffer
	w, err := c.NewWriter(context.Background(), &out, keyID, opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(pt); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// open decrypts a whole stream.
func open(c *Codec, stream []byte, opts ReaderOptions) ([]byte, error) {
	r, err := c.NewReader(context.Background(), bytes.NewReader(stream), opts)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}

// oneByteReader returns one byte per Read, to exercise short reads.
type oneByteReader struct{ r io.Reader }

func (o oneByteReader) Read(p []byte) (int, error) {
	if len(p) > 1 {
		p = p[:1]
	}
	return o.r.Read(p)
}

func TestRoundTrip(t *testing.T) {
	e := setup(t)
	c := New(e.client)
	ctx := context.Background()
	encCtx := map[string]string{"bucket": "backups", "object": "db.tar"}
	for _, cs := range []int{MinChunkSize, 1000, DefaultChunkSize} {
		sizes := []int{0, 1, cs - 1, cs, cs + 1, 2 * cs, 2*cs + 1}
		if cs == DefaultChunkSize {
			sizes = append(sizes, 3<<20+7)
		}
		for _, n := range sizes {
			for _, mode := range []string{"write", "readfrom"} {
				t.Run(fmt.Sprintf("chunk%d/size%d/%s", cs, n, mode), func(t *testing.T) {
					pt := randBytes(n)
					var out bytes.Buffer
					w, err := c.NewWriter(ctx, &out, "alias/stream-a", WriterOptions{Context: encCtx, ChunkSize: cs})
					if err != nil {
						t.Fatal(err)
					}
					switch mode {
					case "write": // uneven pieces
						for rest := pt; len(rest) > 0; {
							k := min(len(rest), 1+len(rest)%777)
							if _, err := w.Write(rest[:k]); err != nil {
								t.Fatal(err)
							}
							rest = rest[k:]
						}
					case "readfrom":
						if _, err := io.Copy(w, oneByteReaderIf(n < 5000, bytes.NewReader(pt))); err != nil {
							t.Fatal(err)
						}
					}
					if err := w.Close(); err != nil {
						t.Fatal(err)
					}
					if w.Written() != int64(n) {
						t.Fatalf("Written %d, want %d", w.Written(), n)
					}
					stream := out.Bytes()
					h, err := ReadHeader(bytes.NewReader(stream))
					if err != nil {
						t.Fatal(err)
					}
					if size, chunks, err := h.BodySize(int64(len(stream))); err != nil || size != int64(n) || chunks != int64(max(1, (n+cs-1)/cs)) {
						t.Fatalf("BodySize = %d, %d, %v; want %d", size, chunks, err, n)
					}
					// Read with small reads.
					r, err := c.NewReader(ctx, bytes.NewReader(stream), ReaderOptions{Context: encCtx})
					if err != nil {
						t.Fatal(err)
					}
					var got bytes.Buffer
					buf := make([]byte, 333)
					for {
						k, err := r.Read(buf)
						got.Write(buf[:k])
						if err == io.EOF {
							break
						}
						if err != nil {
							t.Fatal(err)
						}
					}
					if !bytes.Equal(got.Bytes(), pt) {
						t.Fatalf("round trip mismatch: got %d bytes, want %d", got.Len(), n)
					}
					// Read with WriteTo (io.Copy) from a source that returns short reads.
					r, err = c.NewReader(ctx, oneByteReaderIf(n < 5000, bytes.NewReader(stream)), ReaderOptions{})
					if err != nil {
						t.Fatal(err)
					}
					got.Reset()
					if _, err := io.Copy(&got, r); err != nil || !bytes.Equal(got.Bytes(), pt) {
						t.Fatalf("WriteTo: %v, %d bytes", err, got.Len())
					}
					if r.Header().Context["object"] != "db.tar" || r.Header().Recipients[0].KeyID != e.keyA {
						t.Fatalf("header %+v", r.Header())
					}
				})
			}
		}
	}
}

func oneByteReaderIf(cond bool, r io.Reader) io.Reader {
	if cond {
		return oneByteReader{r}
	}
	return r
}

// TestEncryptionIsRandomized: the same plaintext under a cached data key
// gives different streams (fresh salt and nonce prefix).
func TestEncryptionIsRandomized(t *testing.T) {
	e := setup(t)
	c := New(e.cached(t))
	pt := []byte("same plaintext")
	s1 := seal(t, c, e.keyA, pt, WriterOptions{})
	s2 := seal(t, c, e.keyA, pt, WriterOptions{})
	h1, _ := ReadHeader(bytes.NewReader(s1))
	h2, _ := ReadHeader(bytes.NewReader(s2))
	if !bytes.Equal(h1.Recipients[0].WrappedKey, h2.Recipients[0].WrappedKey) {
		t.Fatal("expected the cached data key to be reused")
	}
	if bytes.Equal(s1[h1.Size:], s2[h2.Size:]) || h1.salt == h2.salt {
		t.Fatal("two streams under one data key share salt or ciphertext")
	}
}

// tamperCase is a small stream whose every byte and bit is altered.
func smallStream(t *testing.T, c *Codec, keyID string) ([]byte, []byte) {
	pt := randBytes(3*MinChunkSize + 5) // four chunks
	return seal(t, c, keyID, pt, WriterOptions{ChunkSize: MinChunkSize, Context: map[string]string{"a": "b"}}), pt
}

func TestEveryBitFlipFails(t *testing.T) {
	e := setup(t)
	c := New(e.cached(t)) // unwrapping is cached for the untouched wrapped key
	stream, pt := smallStream(t, c, e.keyA)
	if got, err := open(c, stream, ReaderOptions{}); err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("untouched stream: %v", err)
	}
	h, _ := ReadHeader(bytes.NewReader(stream))
	t.Logf("stream: %d bytes (%d header), %d bits flipped one at a time", len(stream), h.Size, 8*len(stream))
	for i := range stream {
		for bit := range 8 {
			mod := bytes.Clone(stream)
			mod[i] ^= 1 << bit
			got, err := open(c, mod, ReaderOptions{})
			if err == nil {
				t.Fatalf("flip byte %d bit %d: decrypted %d bytes without error", i, bit, len(got))
			}
			if i >= h.Size && !errors.Is(err, ErrAuthentication) {
				t.Fatalf("flip in body byte %d: error %v, want ErrAuthentication", i, err)
			}
		}
	}
}

func TestTruncationAndExtensionFail(t *testing.T) {
	e := setup(t)
	c := New(e.cached(t))
	stream, pt := smallStream(t, c, e.keyA)
	h, _ := ReadHeader(bytes.NewReader(stream))
	for n := 0; n < len(stream); n++ { // every prefix, chunk boundaries included
		got, err := open(c, stream[:n], ReaderOptions{})
		if err == nil {
			t.Fatalf("truncated to %d of %d bytes: no error (%d bytes out)", n, len(stream), len(got))
		}
		if n >= h.Size && !errors.Is(err, ErrAuthentication) {
			t.Fatalf("truncated to %d: %v", n, err)
		}
		if n < h.Size && !errors.Is(err, ErrTruncated) {
			t.Fatalf("truncated header to %d: %v", n, err)
		}
		if len(got) > len(pt) || !bytes.Equal(got, pt[:len(got)]) {
			t.Fatal("released bytes that are not a prefix of the plaintext")
		}
	}
	for _, extra := range [][]byte{{0}, randBytes(TagSize), stream[h.Size : h.Size+MinChunkSize+TagSize]} {
		if _, err := open(c, append(bytes.Clone(stream), extra...), ReaderOptions{}); !errors.Is(err, ErrAuthentication) {
			t.Fatalf("extended by %d bytes: %v", len(extra), err)
		}
	}
}

func TestChunkReorderDuplicateDropFail(t *testing.T) {
	e := setup(t)
	c := New(e.cached(t))
	stream, _ := smallStream(t, c, e.keyA)
	h, _ := ReadHeader(bytes.NewReader(stream))
	hdr := stream[:h.Size]
	var chunks [][]byte
	for rest := stream[h.Size:]; len(rest) > 0; {
		k := min(len(rest), MinChunkSize+TagSize)
		chunks = append(chunks, rest[:k])
		rest = rest[k:]
	}
	if len(chunks) != 4 {
		t.Fatalf("%d chunks", len(chunks))
	}
	build := func(order ...int) []byte {
		out := bytes.Clone(hdr)
		for _, i := range order {
			out = append(out, chunks[i]...)
		}
		return out
	}
	if _, err := open(c, build(0, 1, 2, 3), ReaderOptions{}); err != nil {
		t.Fatalf("rebuilt stream: %v", err)
	}
	for _, order := range [][]int{{1, 0, 2, 3}, {0, 2, 1, 3}, {0, 0, 1, 2, 3}, {0, 1, 1, 2, 3}, {0, 1, 2, 2, 3}, {0, 2, 3}, {1, 2, 3}, {0, 1, 3}, {0, 1, 2}, {0, 1, 2, 3, 3}, {3}} {
		if _, err := open(c, build(order...), ReaderOptions{}); !errors.Is(err, ErrAuthentication) {
			t.Fatalf("chunks %v: %v", order, err)
		}
	}
	// A body moved under the header of another stream (same data key,
	// cached) fails: the header hash is bound into the payload key.
	other, _ := smallStream(t, c, e.keyA)
	oh, _ := ReadHeader(bytes.NewReader(other))
	swapped := append(bytes.Clone(other[:oh.Size]), stream[h.Size:]...)
	if _, err := open(c, swapped, ReaderOptions{}); !errors.Is(err, ErrAuthentication) {
		t.Fatalf("header swap: %v", err)
	}
}

func TestSecondRecipient(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	c := New(e.client)
	pt := randBytes(200_000)
	stream := seal(t, c, "alias/stream-a", pt, WriterOptions{ExtraKeyIDs: []string{"alias/stream-b", e.keyA}})
	h, _ := ReadHeader(bytes.NewReader(stream))
	if len(h.Recipients) != 2 || h.Recipients[0].KeyID != e.keyA || h.Recipients[1].KeyID != e.keyB {
		t.Fatalf("recipients %+v", h.Recipients)
	}
	// Only key B allowed: KMS enforces it.
	if got, err := open(c, stream, ReaderOptions{KeyIDs: []string{"alias/stream-b"}}); err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("open with B only: %v", err)
	}
	// Key A disabled: the reader falls through to B.
	if _, err := e.client.DisableKey(ctx, e.keyA); err != nil {
		t.Fatal(err)
	}
	if got, err := open(c, stream, ReaderOptions{}); err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("open with A disabled: %v", err)
	}
	// Recipient A removed from the header: B alone opens it.
	if _, err := e.client.EnableKey(ctx, e.keyA); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	nh, err := c.Rewrap(ctx, &out, bytes.NewReader(stream), RewrapOptions{KeyIDs: []string{e.keyB}})
	if err != nil {
		t.Fatal(err)
	}
	if len(nh.Recipients) != 1 || nh.Recipients[0].KeyID != e.keyB {
		t.Fatalf("rewrapped recipients %+v", nh.Recipients)
	}
	if got, err := open(c, out.Bytes(), ReaderOptions{}); err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("open rewrapped: %v", err)
	}
	if _, err := open(c, out.Bytes(), ReaderOptions{KeyIDs: []string{e.keyA}}); !errors.Is(err, ErrNoRecipient) {
		t.Fatalf("open rewrapped with A only: %v", err)
	}
}

func TestDisabledKeyClearError(t *testing.T) {
	e := setup(t)
	c := New(e.client)
	stream := seal(t, c, e.keyA, []byte("payroll"), WriterOptions{})
	if _, err := e.client.DisableKey(context.Background(), e.keyA); err != nil {
		t.Fatal(err)
	}
	_, err := open(c, stream, ReaderOptions{})
	if !errors.Is(err, ErrNoRecipient) || !errors.Is(err, kmsclient.ErrInvalidKeyState) || !strings.Contains(err.Error(), e.keyA) {
		t.Fatalf("disabled key: %v", err)
	}
	t.Logf("error: %v", err)
	// Writing under a disabled key fails before any byte is written.
	var out bytes.Buffer
	if _, err := c.NewWriter(context.Background(), &out, e.keyA, WriterOptions{}); !errors.Is(err, kmsclient.ErrInvalidKeyState) || out.Len() != 0 {
		t.Fatalf("write under disabled key: %v, %d bytes", err, out.Len())
	}
}

func TestContextIsBound(t *testing.T) {
	e := setup(t)
	c := New(e.client)
	encCtx := map[string]string{"tenant": "7"}
	stream := seal(t, c, e.keyA, []byte("x"), WriterOptions{Context: encCtx})
	if _, err := open(c, stream, ReaderOptions{Context: map[string]string{"tenant": "8"}}); !errors.Is(err, ErrContextMismatch) {
		t.Fatalf("wrong expected context: %v", err)
	}
	if _, err := open(c, stream, ReaderOptions{Context: map[string]string{}}); !errors.Is(err, ErrContextMismatch) {
		t.Fatalf("empty expected context: %v", err)
	}
	if got, err := open(c, stream, ReaderOptions{Context: map[string]string{"tenant": "7"}}); err != nil || string(got) != "x" {
		t.Fatalf("right context: %v", err)
	}
	// The header's context rewritten to another value of the same length:
	// KMS refuses to unwrap under it.
	mod := bytes.Replace(stream, []byte("tenant\x00\x017"), []byte("tenant\x00\x018"), 1)
	if bytes.Equal(mod, stream) {
		t.Fatal("context not found in header")
	}
	if _, err := open(c, mod, ReaderOptions{}); !errors.Is(err, ErrNoRecipient) || !errors.Is(err, kmsclient.ErrInvalidCiphertext) {
		t.Fatalf("tampered context: %v", err)
	}
}

func TestRewrapAfterRotation(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	c := New(e.client)
	pt := randBytes(100_000)
	encCtx := map[string]string{"file": "a.bin"}
	stream := seal(t, c, e.keyA, pt, WriterOptions{Context: encCtx, ExtraKeyIDs: []string{e.keyB}})
	h, _ := ReadHeader(bytes.NewReader(stream))
	if _, err := e.client.RotateKey(ctx, e.keyA); err != nil {
		t.Fatal(err)
	}
	before := e.calls.paths["/v1/re-encrypt"].Load()
	var out bytes.Buffer
	nh, err := c.Rewrap(ctx, &out, bytes.NewReader(stream), RewrapOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n := e.calls.paths["/v1/re-encrypt"].Load() - before; n != 2 {
		t.Fatalf("%d ReEncrypt calls, want 2", n)
	}
	re := out.Bytes()
	if !bytes.Equal(re[nh.Size:], stream[h.Size:]) {
		t.Fatal("rewrap changed the body")
	}
	if bytes.Equal(nh.Recipients[0].WrappedKey, h.Recipients[0].WrappedKey) || nh.Recipients[0].KeyID != e.keyA || nh.Recipients[1].KeyID != e.keyB {
		t.Fatalf("recipients not rewrapped: %+v", nh.Recipients)
	}
	res, err := e.client.Decrypt(ctx, nh.Recipients[0].WrappedKey, encCtx)
	if err != nil || res.KeyVersion != 2 {
		t.Fatalf("rewrapped key: version %v, %v", res, err)
	}
	clear(res.Plaintext)
	if got, err := open(c, re, ReaderOptions{Context: encCtx}); err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("open rewrapped: %v", err)
	}
	// Adding a recipient: A and a new key C, B dropped.
	kc, err := e.client.CreateKey(ctx, kmsclient.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if _, err := c.Rewrap(ctx, &out, bytes.NewReader(re), RewrapOptions{KeyIDs: []string{e.keyA, kc.KeyID}}); err != nil {
		t.Fatal(err)
	}
	if got, err := open(c, out.Bytes(), ReaderOptions{KeyIDs: []string{kc.KeyID}}); err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("open via new recipient: %v", err)
	}
	if _, err := open(c, out.Bytes(), ReaderOptions{KeyIDs: []string{e.keyB}}); !errors.Is(err, ErrNoRecipient) {
		t.Fatalf("dropped recipient still opens: %v", err)
	}
}

// TestCacheCalls counts kmsd calls for many small files with and without
// the client's data-key cache.
func TestCacheCalls(t *testing.T) {
	e := setup(t)
	const files = 50
	run := func(kms KMS, extra []string) (writeCalls, readCalls int64) {
		c := New(kms)
		streams := make([][]byte, files)
		start := e.calls.calls.Load()
		for i := range streams {
			streams[i] = seal(t, c, "alias/stream-a", []byte(fmt.Sprintf("file %d", i)), WriterOptions{ExtraKeyIDs: extra, Context: map[string]string{"dir": "logs"}, SizeHint: 6})
		}
		mid := e.calls.calls.Load()
		for i, s := range streams {
			got, err := open(c, s, ReaderOptions{})
			if err != nil || string(got) != fmt.Sprintf("file %d", i) {
				t.Fatalf("file %d: %v", i, err)
			}
		}
		return mid - start, e.calls.calls.Load() - mid
	}
	w, r := run(e.client, nil)
	if w != files || r != files {
		t.Fatalf("uncached: %d write calls, %d read calls; want %d each", w, r, files)
	}
	w, r = run(e.cached(t), nil)
	if w != 1 || r != 0 {
		t.Fatalf("cached: %d write calls, %d read calls; want 1 and 0", w, r)
	}
	w, r = run(e.cached(t), []string{"alias/stream-b"})
	if w != 2 || r != 0 {
		t.Fatalf("cached, two recipients: %d write calls, %d read calls; want 2 and 0", w, r)
	}
	// The cache's use limit is honoured.
	cc, err := kmsclient.NewCached(e.client, kmsclient.CacheConfig{DataKeys: dkcache.DataKeyConfig{MaxUses: 10}})
	if err != nil {
		t.Fatal(err)
	}
	if w, _ = run(cc, nil); w != files/10 {
		t.Fatalf("cached with MaxUses 10: %d write calls, want %d", w, files/10)
	}
}

func TestWriterOptions(t *testing.T) {
	e := setup(t)
	c := New(e.client)
	var out bytes.Buffer
	for _, o := range []WriterOptions{{ChunkSize: MinChunkSize - 1}, {ChunkSize: MaxChunkSize + 1}, {Context: map[string]string{"": "x"}},
		{ExtraKeyIDs: make([]string, MaxRecipients)}} {
		if _, err := c.NewWriter(context.Background(), &out, e.keyA, o); !errors.Is(err, ErrInvalidOptions) {
			t.Fatalf("%+v: %v", o, err)
		}
	}
	if out.Len() != 0 {
		t.Fatal("bytes written for invalid options")
	}
	w, err := c.NewWriter(context.Background(), &out, e.keyA, WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("late")); !errors.Is(err, ErrClosed) {
		t.Fatalf("write after close: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
}
