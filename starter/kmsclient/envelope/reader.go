package envelope

import (
	"context"
	"crypto/hmac"
	"fmt"
	"io"
	"maps"
)

// ReaderOptions configure NewReader. The zero value is valid.
type ReaderOptions struct {
	// Context, when not nil, is the encryption context the stream must
	// have, exactly (checked before any KMS call). Without it the reader
	// accepts the header's context; read it back with Reader.Header.
	Context map[string]string
	// KeyIDs, when set, restricts which master keys (ids or aliases) may
	// unwrap the data key; KMS enforces it (DecryptWithKeyID). Without it
	// any recipient the caller's credentials can decrypt is used, in
	// header order, and KMS must confirm the key id the recipient names.
	KeyIDs []string
}

// Reader decrypts a stream. Read returns plaintext only from chunks that
// have authenticated; a stream cut short, extended, reordered or altered
// fails with ErrAuthentication (never a clean io.EOF). A Reader is not
// safe for concurrent use.
type Reader struct {
	src   io.Reader
	h     *Header
	k     *keys
	buf   []byte // ciphertext chunk + 1 byte of look-ahead
	have  int    // ciphertext bytes in buf
	pt    []byte // authenticated plaintext not yet returned
	next  int    // position of the look-ahead byte once pt is consumed
	idx   uint32
	done  bool
	nonce [12]byte
	read  int64
	err   error
}

// NewReader reads the header from src, unwraps the data key through KMS,
// checks the header MAC and returns a Reader for the body.
func (c *Codec) NewReader(ctx context.Context, src io.Reader, opts ReaderOptions) (*Reader, error) {
	h, err := ReadHeader(src)
	if err != nil {
		return nil, err
	}
	if opts.Context != nil && !maps.Equal(opts.Context, h.Context) {
		return nil, ErrContextMismatch
	}
	dk, err := c.unwrap(ctx, h, opts.KeyIDs)
	if err != nil {
		return nil, err
	}
	return newReader(src, h, dk)
}

// newReader derives the keys from dk (and clears it), checks the header
// MAC and returns the Reader.
func newReader(src io.Reader, h *Header, dk []byte) (*Reader, error) {
	k, err := deriveKeys(dk, h)
	clear(dk)
	if err != nil {
		return nil, err
	}
	mac := h.computeMAC(k.macKey)
	clear(k.macKey)
	if !hmac.Equal(mac[:], h.mac[:]) {
		return nil, fmt.Errorf("%w: header", ErrAuthentication)
	}
	return &Reader{src: src, h: h, k: k, buf: make([]byte, min(h.ChunkSize, initialBuffer)+TagSize+1)}, nil
}

// Header returns the stream's header, authenticated (but for the
// recipients' key ids) by NewReader.
func (r *Reader) Header() *Header { return r.h }

// Read implements io.Reader.
func (r *Reader) Read(p []byte) (int, error) {
	for len(r.pt) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		if r.done {
			r.finish(io.EOF)
			return 0, io.EOF
		}
		r.nextChunk()
	}
	n := copy(p, r.pt)
	clear(r.pt[:n])
	r.pt = r.pt[n:]
	r.read += int64(n)
	return n, nil
}

// WriteTo implements io.WriterTo: it writes each chunk's plaintext once
// it has authenticated, without an extra copy.
func (r *Reader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		if len(r.pt) > 0 {
			n, err := w.Write(r.pt)
			clear(r.pt[:n])
			r.pt = r.pt[n:]
			total += int64(n)
			r.read += int64(n)
			if err != nil {
				return total, err
			}
			continue
		}
		if r.err != nil {
			return total, r.err
		}
		if r.done {
			r.finish(io.EOF)
			return total, nil
		}
		r.nextChunk()
	}
}

// nextChunk reads, authenticates and decrypts the next chunk into r.pt,
// or sets r.err.
func (r *Reader) nextChunk() {
	if r.next > 0 { // move the look-ahead byte to the front
		r.buf[0] = r.buf[r.next]
		r.have, r.next = 1, 0
	}
	full := r.h.ChunkSize + TagSize
	for r.have < full+1 {
		if r.have == len(r.buf) { // grow toward one chunk + look-ahead
			nb := make([]byte, min(2*len(r.buf), full+1))
			copy(nb, r.buf[:r.have])
			clear(r.buf)
			r.buf = nb
		}
		n, err := r.src.Read(r.buf[r.have:])
		r.have += n
		if err == io.EOF {
			break
		}
		if err != nil {
			r.finish(err)
			return
		}
	}
	last := r.have <= full
	size := full
	if last {
		size = r.have
		// An empty last chunk only ends an empty stream.
		if size < TagSize || (size == TagSize && r.idx > 0) {
			r.finish(fmt.Errorf("%w: stream truncated", ErrAuthentication))
			return
		}
	} else if r.idx == ^uint32(0) {
		r.finish(ErrTooLarge)
		return
	}
	r.h.nonce(&r.nonce, r.idx, last)
	pt, err := r.k.aead.Open(r.buf[:0], r.nonce[:], r.buf[:size], nil)
	if err != nil {
		r.finish(fmt.Errorf("%w: chunk %d", ErrAuthentication, r.idx))
		return
	}
	r.idx++
	r.pt = pt
	if last {
		r.done = true
	} else {
		r.next = full
	}
}

// finish records the terminal state and drops the keys and buffer.
func (r *Reader) finish(err error) {
	r.err = err
	clear(r.buf)
	r.pt = nil
	r.k = nil
}

// Plaintext returns the number of plaintext bytes returned so far.
func (r *Reader) Plaintext() int64 { return r.read }
