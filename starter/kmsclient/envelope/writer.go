package envelope

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"math"
)

// WriterOptions configure NewWriter. The zero value is valid.
type WriterOptions struct {
	// Context is the encryption context: bound to the wrapped data keys by
	// KMS and to the stream by the header MAC. Not secret (it is stored in
	// the clear and logged by kmsd's audit).
	Context map[string]string
	// ExtraKeyIDs are more master keys (ids or aliases) that each wrap the
	// same data key, so that any one of them can open the stream (for
	// example one key per region). Each costs one KMS Encrypt call unless
	// the data key came from a cache and was wrapped for that key before.
	ExtraKeyIDs []string
	// ChunkSize is the plaintext size of each chunk, MinChunkSize to
	// MaxChunkSize. Default DefaultChunkSize (64 KiB). Memory use of a
	// Writer or Reader is about one chunk.
	ChunkSize int
	// SizeHint is the expected plaintext size, if known. With a caching
	// KMS (*kmsclient.Cached) it is what the data key's byte limit counts.
	SizeHint int64
}

// Writer encrypts a stream. Data written is buffered one chunk at a time;
// Close seals the last chunk and must be called. Close does not close the
// underlying writer. A Writer is not safe for concurrent use.
type Writer struct {
	dst     io.Writer
	h       *Header
	k       *keys
	buf     []byte // one chunk of plaintext, sealed in place
	n       int    // plaintext bytes in buf
	chunk   int
	idx     uint32
	nonce   [12]byte
	written int64
	err     error
}

// NewWriter gets a data key under keyID (an id or alias) from KMS, wraps
// it for opts.ExtraKeyIDs, writes the header to dst and returns a Writer
// for the body. No byte reaches dst if KMS fails.
func (c *Codec) NewWriter(ctx context.Context, dst io.Writer, keyID string, opts WriterOptions) (*Writer, error) {
	cs := opts.ChunkSize
	if cs == 0 {
		cs = DefaultChunkSize
	}
	if cs < MinChunkSize || cs > MaxChunkSize {
		return nil, fmt.Errorf("%w: chunk size %d not in [%d, %d]", ErrInvalidOptions, cs, MinChunkSize, MaxChunkSize)
	}
	if keyID == "" || len(opts.ExtraKeyIDs) >= MaxRecipients {
		return nil, fmt.Errorf("%w: need a key id and at most %d extra keys", ErrInvalidOptions, MaxRecipients-1)
	}
	if err := checkContext(opts.Context); err != nil {
		return nil, err
	}
	dk, rs, err := c.newDataKey(ctx, keyID, opts.ExtraKeyIDs, opts.Context, opts.SizeHint)
	if err != nil {
		return nil, err
	}
	return newWriter(dst, dk, rs, cs, opts.Context)
}

// newWriter writes a header for the data key dk (cleared on return) and
// recipients rs to dst and returns the Writer for the body.
func newWriter(dst io.Writer, dk []byte, rs []Recipient, cs int, encCtx map[string]string) (*Writer, error) {
	defer clear(dk)
	h := &Header{Version: Version, ChunkSize: cs, Context: encCtx, Recipients: rs}
	rand.Read(h.salt[:])
	rand.Read(h.noncePrefix[:])
	core, err := encodeCore(cs, h.salt[:], h.noncePrefix[:], encCtx)
	if err != nil {
		return nil, err
	}
	h.core = core
	k, err := deriveKeys(dk, h)
	if err != nil {
		return nil, err
	}
	h.mac = h.computeMAC(k.macKey)
	clear(k.macKey)
	hb, err := h.encode()
	if err != nil {
		return nil, err
	}
	if _, err := dst.Write(hb); err != nil {
		return nil, err
	}
	return &Writer{dst: dst, h: h, k: k, buf: make([]byte, min(cs, initialBuffer), min(cs, initialBuffer)+TagSize), chunk: cs}, nil
}

// Header returns the header written (its Size included).
func (w *Writer) Header() *Header { return w.h }

// Write encrypts p. A full chunk is sealed and written only when more data
// follows it (the last chunk is sealed by Close).
func (w *Writer) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	done := 0
	for len(p) > 0 {
		if w.n == w.chunk {
			if err := w.flush(false); err != nil {
				return done, err
			}
		}
		w.grow(len(p))
		m := copy(w.buf[w.n:], p)
		w.n += m
		done += m
		p = p[m:]
	}
	return done, nil
}

// ReadFrom encrypts everything from r until EOF (it does not Close).
func (w *Writer) ReadFrom(r io.Reader) (int64, error) {
	if w.err != nil {
		return 0, w.err
	}
	var total int64
	for {
		if w.n == w.chunk {
			// Seal a full chunk only once more data is known to follow:
			// the last chunk must carry the last-chunk flag.
			var one [1]byte
			m, err := io.ReadFull(r, one[:])
			if m == 1 {
				if ferr := w.flush(false); ferr != nil {
					return total, ferr
				}
				w.buf[0] = one[0]
				w.n = 1
				total++
			}
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				return total, nil
			}
			if err != nil {
				return total, err
			}
			continue
		}
		w.grow(initialBuffer)
		m, err := r.Read(w.buf[w.n:])
		w.n += m
		total += int64(m)
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// grow makes room for up to want more bytes in the chunk buffer, which
// starts small (small streams stay cheap) and grows to one chunk.
func (w *Writer) grow(want int) {
	if w.n+want <= len(w.buf) || len(w.buf) == w.chunk {
		return
	}
	size := min(max(2*len(w.buf), w.n+want), w.chunk)
	nb := make([]byte, size, size+TagSize)
	copy(nb, w.buf[:w.n])
	clear(w.buf[:cap(w.buf)])
	w.buf = nb
}

// flush seals the buffered chunk and writes it.
func (w *Writer) flush(last bool) error {
	if !last && w.idx == math.MaxUint32 {
		w.err = ErrTooLarge
		return w.err
	}
	w.h.nonce(&w.nonce, w.idx, last)
	ct := w.k.aead.Seal(w.buf[:0], w.nonce[:], w.buf[:w.n], nil)
	w.written += int64(w.n)
	w.n = 0
	w.idx++
	if _, err := w.dst.Write(ct); err != nil {
		w.err = err
		return err
	}
	return nil
}

// Close seals and writes the last chunk. The stream is incomplete (and
// will not decrypt) until Close returns nil. Later writes fail.
func (w *Writer) Close() error {
	if w.err != nil {
		clear(w.buf[:cap(w.buf)])
		w.k = nil
		if w.err == ErrClosed {
			return nil
		}
		return w.err
	}
	err := w.flush(true)
	clear(w.buf[:cap(w.buf)])
	w.k = nil
	if err != nil {
		return err
	}
	w.err = ErrClosed
	return nil
}

// Written returns the number of plaintext bytes sealed so far.
func (w *Writer) Written() int64 { return w.written + int64(w.n) }
