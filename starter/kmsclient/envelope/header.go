package envelope

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
	"unicode/utf8"
)

// Format constants (see FORMAT.md).
const (
	// Magic starts every stream.
	Magic = "KMSS"
	// Version is the format version this package writes.
	Version = 1
	// suiteV1 is AES-256-GCM chunks, HKDF-SHA256 key derivation,
	// HMAC-SHA256 header authentication, STREAM nonces.
	suiteV1 = 1

	// DefaultChunkSize is the plaintext size of every chunk but the last.
	DefaultChunkSize = 64 << 10
	// MinChunkSize and MaxChunkSize bound the chunk size a writer accepts
	// and a reader allocates for.
	MinChunkSize = 16
	MaxChunkSize = 8 << 20

	// TagSize is the AES-GCM tag appended to every chunk.
	TagSize = 16

	// Limits of the header fields.
	MaxRecipients    = 16
	MaxKeyIDLen      = 512
	MaxWrappedKeyLen = 8 << 10
	MaxContextPairs  = 64
	MaxContextLen    = 4 << 10 // per key and per value

	// initialBuffer is where Writer and Reader buffers start; they grow
	// to one chunk only for streams that need it.
	initialBuffer = 4 << 10

	saltSize        = 32
	noncePrefixSize = 7
	macSize         = sha256.Size
	dataKeySize     = 32

	infoMAC     = "kmsgo-stream v1 header mac"
	infoPayload = "kmsgo-stream v1 payload key "
)

// Recipient is one master key's copy of the data key.
type Recipient struct {
	// KeyID is the master key that wrapped the data key, as KMS reported
	// it. Not covered by the header MAC: a hint for choosing a recipient,
	// checked against what KMS says when the key is unwrapped.
	KeyID string `json:"key_id"`
	// WrappedKey is the data key encrypted by KMS under KeyID with the
	// header's encryption context.
	WrappedKey []byte `json:"wrapped_key"`
}

// Header is the decoded header of a stream. Everything but Recipients is
// covered by the header MAC, which only a holder of the data key can check
// (NewReader does); a Header from ReadHeader alone is unauthenticated.
type Header struct {
	Version    int               `json:"version"`
	ChunkSize  int               `json:"chunk_size"`
	Context    map[string]string `json:"encryption_context"`
	Recipients []Recipient       `json:"recipients"`
	// Size is the length of the encoded header in bytes; the body starts
	// there.
	Size int `json:"header_size"`

	salt        [saltSize]byte
	noncePrefix [noncePrefixSize]byte
	core        []byte // the MAC-covered bytes
	mac         [macSize]byte
}

// BodySize reports how many plaintext bytes and chunks a stream of total
// bytes (header included) with this header holds, or ErrAuthentication if
// no valid stream has that length. It does not authenticate anything.
func (h *Header) BodySize(total int64) (plaintext, chunks int64, err error) {
	body := total - int64(h.Size)
	ct := int64(h.ChunkSize) + TagSize
	if body < TagSize {
		return 0, 0, fmt.Errorf("%w: body of %d bytes is shorter than one tag", ErrAuthentication, body)
	}
	chunks = body / ct
	if rem := body % ct; rem != 0 {
		if rem < TagSize || (rem == TagSize && chunks > 0) {
			return 0, 0, fmt.Errorf("%w: body length %d is not a valid chunk sequence", ErrAuthentication, body)
		}
		chunks++
	}
	return body - chunks*TagSize, chunks, nil
}

// encodeCore builds the MAC-covered part of a header.
func encodeCore(chunkSize int, salt []byte, prefix []byte, encCtx map[string]string) ([]byte, error) {
	if err := checkContext(encCtx); err != nil {
		return nil, err
	}
	b := make([]byte, 0, 64)
	b = append(b, Magic...)
	b = append(b, Version, suiteV1)
	b = binary.BigEndian.AppendUint32(b, uint32(chunkSize))
	b = append(b, salt...)
	b = append(b, prefix...)
	keys := make([]string, 0, len(encCtx))
	for k := range encCtx {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = binary.BigEndian.AppendUint16(b, uint16(len(keys)))
	for _, k := range keys {
		b = appendString16(b, k)
		b = appendString16(b, encCtx[k])
	}
	return b, nil
}

func checkContext(encCtx map[string]string) error {
	if len(encCtx) > MaxContextPairs {
		return fmt.Errorf("%w: %d context pairs, at most %d", ErrInvalidOptions, len(encCtx), MaxContextPairs)
	}
	for k, v := range encCtx {
		if k == "" || len(k) > MaxContextLen || len(v) > MaxContextLen || !utf8.ValidString(k) || !utf8.ValidString(v) {
			return fmt.Errorf("%w: context keys must be non-empty and keys and values valid UTF-8 of at most %d bytes", ErrInvalidOptions, MaxContextLen)
		}
	}
	return nil
}

func appendString16(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

func appendBytes16(b []byte, s []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

// encodeRecipients builds the recipient section.
func encodeRecipients(rs []Recipient) ([]byte, error) {
	if len(rs) == 0 || len(rs) > MaxRecipients {
		return nil, fmt.Errorf("%w: %d recipients, want 1..%d", ErrInvalidOptions, len(rs), MaxRecipients)
	}
	b := []byte{byte(len(rs))}
	for _, r := range rs {
		if r.KeyID == "" || len(r.KeyID) > MaxKeyIDLen || len(r.WrappedKey) == 0 || len(r.WrappedKey) > MaxWrappedKeyLen {
			return nil, fmt.Errorf("%w: recipient key id or wrapped key size out of range", ErrInvalidOptions)
		}
		b = appendString16(b, r.KeyID)
		b = appendBytes16(b, r.WrappedKey)
	}
	return b, nil
}

// encode returns the full header bytes (core, recipients, MAC) and sets Size.
func (h *Header) encode() ([]byte, error) {
	rs, err := encodeRecipients(h.Recipients)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(h.core)+len(rs)+macSize)
	out = append(out, h.core...)
	out = append(out, rs...)
	out = append(out, h.mac[:]...)
	h.Size = len(out)
	return out, nil
}

// headerReader reads header fields with bounds and keeps the core bytes.
type headerReader struct {
	r    io.Reader
	n    int
	core bytes.Buffer
	keep bool
	err  error
}

func (hr *headerReader) read(n int) []byte {
	if hr.err != nil {
		return nil
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(hr.r, b); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			hr.err = fmt.Errorf("%w: inside the header", ErrTruncated)
		} else {
			hr.err = err
		}
		return nil
	}
	hr.n += n
	if hr.keep {
		hr.core.Write(b)
	}
	return b
}

func (hr *headerReader) u8() int {
	b := hr.read(1)
	if b == nil {
		return 0
	}
	return int(b[0])
}

func (hr *headerReader) u16() int {
	b := hr.read(2)
	if b == nil {
		return 0
	}
	return int(binary.BigEndian.Uint16(b))
}

func (hr *headerReader) fail(format string, args ...any) {
	if hr.err == nil {
		hr.err = fmt.Errorf("%w: "+format, append([]any{ErrMalformedHeader}, args...)...)
	}
}

// bytes16 reads a length-prefixed field of 1..max bytes (0..max if allowEmpty).
func (hr *headerReader) bytes16(what string, max int, allowEmpty bool) []byte {
	n := hr.u16()
	if hr.err != nil {
		return nil
	}
	if n > max || (n == 0 && !allowEmpty) {
		hr.fail("%s length %d out of range", what, n)
		return nil
	}
	return hr.read(n)
}

// ReadHeader reads and parses the header at the start of r, leaving r at
// the first byte of the body. It authenticates nothing: use it to inspect
// a stream (key ids, context, chunk size) without KMS. Errors match
// ErrMalformedHeader, ErrUnsupportedVersion or ErrTruncated, or are r's.
func ReadHeader(r io.Reader) (*Header, error) {
	hr := &headerReader{r: r, keep: true}
	h := &Header{}
	if m := hr.read(len(Magic)); m != nil && string(m) != Magic {
		hr.fail("bad magic")
	}
	v, suite := hr.u8(), hr.u8()
	if hr.err == nil && (v != Version || suite != suiteV1) {
		return nil, fmt.Errorf("%w: version %d suite %d", ErrUnsupportedVersion, v, suite)
	}
	h.Version = v
	if b := hr.read(4); b != nil {
		cs := binary.BigEndian.Uint32(b)
		if cs < MinChunkSize || cs > MaxChunkSize {
			hr.fail("chunk size %d out of range", cs)
		}
		h.ChunkSize = int(cs)
	}
	copy(h.salt[:], hr.read(saltSize))
	copy(h.noncePrefix[:], hr.read(noncePrefixSize))
	npairs := hr.u16()
	if npairs > MaxContextPairs {
		hr.fail("%d context pairs", npairs)
	}
	prev := ""
	for i := 0; i < npairs && hr.err == nil; i++ {
		k := string(hr.bytes16("context key", MaxContextLen, false))
		val := string(hr.bytes16("context value", MaxContextLen, true))
		if hr.err != nil {
			break
		}
		if i > 0 && k <= prev {
			hr.fail("context keys not strictly sorted")
		}
		if !utf8.ValidString(k) || !utf8.ValidString(val) {
			hr.fail("context is not valid UTF-8")
		}
		if h.Context == nil {
			h.Context = make(map[string]string, npairs)
		}
		h.Context[k] = val
		prev = k
	}
	hr.keep = false
	nrec := hr.u8()
	if hr.err == nil && (nrec == 0 || nrec > MaxRecipients) {
		hr.fail("%d recipients", nrec)
	}
	for i := 0; i < nrec && hr.err == nil; i++ {
		id := hr.bytes16("key id", MaxKeyIDLen, false)
		wk := hr.bytes16("wrapped key", MaxWrappedKeyLen, false)
		if hr.err == nil {
			h.Recipients = append(h.Recipients, Recipient{KeyID: string(id), WrappedKey: wk})
		}
	}
	copy(h.mac[:], hr.read(macSize))
	if hr.err != nil {
		return nil, hr.err
	}
	h.core = hr.core.Bytes()
	h.Size = hr.n
	return h, nil
}

// keys holds what a data key derives for one stream.
type keys struct {
	aead   cipher.AEAD
	macKey []byte
}

// deriveKeys derives the header MAC key and the payload AEAD from the data
// key, the header's salt and the SHA-256 of the header core:
//
//	prk         = HKDF-Extract(SHA-256, secret = data key, salt = salt)
//	mac key     = HKDF-Expand(prk, "kmsgo-stream v1 header mac", 32)
//	payload key = HKDF-Expand(prk, "kmsgo-stream v1 payload key " || SHA-256(core), 32)
//
// Every intermediate secret is cleared; the caller clears macKey.
func deriveKeys(dataKey []byte, h *Header) (*keys, error) {
	if len(dataKey) != dataKeySize {
		return nil, fmt.Errorf("%w: data key is %d bytes", ErrAuthentication, len(dataKey))
	}
	prk, err := hkdf.Extract(sha256.New, dataKey, h.salt[:])
	if err != nil {
		return nil, err
	}
	defer clear(prk)
	macKey, err := hkdf.Expand(sha256.New, prk, infoMAC, 32)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(h.core)
	pk, err := hkdf.Expand(sha256.New, prk, infoPayload+string(sum[:]), 32)
	if err != nil {
		clear(macKey)
		return nil, err
	}
	defer clear(pk)
	block, err := aes.NewCipher(pk)
	if err != nil {
		clear(macKey)
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		clear(macKey)
		return nil, err
	}
	return &keys{aead: aead, macKey: macKey}, nil
}

func (h *Header) computeMAC(macKey []byte) [macSize]byte {
	m := hmac.New(sha256.New, macKey)
	m.Write(h.core)
	var out [macSize]byte
	m.Sum(out[:0])
	return out
}

// nonce writes the STREAM nonce of chunk idx into n:
// prefix (7 bytes) || idx (4 bytes, big endian) || last (1 byte).
func (h *Header) nonce(n *[12]byte, idx uint32, last bool) {
	copy(n[:noncePrefixSize], h.noncePrefix[:])
	binary.BigEndian.PutUint32(n[noncePrefixSize:], idx)
	n[11] = 0
	if last {
		n[11] = 1
	}
}
