package devhsm

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/kmsgo/kmsgo/hsm"
)

const (
	// MaxIDLen is the longest key id accepted, in bytes.
	MaxIDLen = 128
	// MaxPlaintext is the largest plaintext Encrypt and WrapKey accept: the
	// most that still gives parts Decrypt accepts and a framed blob
	// hsm.ParseSealed accepts.
	MaxPlaintext = hsm.MaxSealedSize - hsm.SealedOverhead
	// MaxRandom is the largest n Random accepts.
	MaxRandom = 1 << 20

	rootKeyFile = "root.key"
	keysDir     = "keys"
	keyFileExt  = ".key"
	tmpPrefix   = ".tmp-"
	rootKeySize = 32
)

// keyFilePrefix is the domain-separation prefix of the AAD that binds a key
// file to its id.
const keyFilePrefix = "kmsgo/devhsm/keyfile/v1\x00"

// wrapPrefix is the prefix hsm.WrapAAD puts in front of the caller's aad.
var wrapPrefix = hsm.WrapAAD(nil)

// Backend is the development-only software hsm.Backend. See the package
// comment: it is NOT an HSM. Create it with Open.
type Backend struct {
	keysPath string

	mu     sync.RWMutex
	closed bool
	root   *key
	keys   map[string]*key // includes hsm.RootKeyID -> root
}

var _ hsm.Backend = (*Backend)(nil)

// key is one unwrapped key held in memory.
type key struct {
	raw  []byte // zeroed on DestroyKey and Close
	aead cipher.AEAD
}

func newKey(raw []byte) (*key, error) {
	a, err := newAEAD(raw)
	if err != nil {
		return nil, err
	}
	return &key{raw: raw, aead: a}, nil
}

func (k *key) wipe() {
	hsm.Zero(k.raw)
	k.aead = nil
}

// newAEAD returns AES-GCM with a 12-byte nonce and a 16-byte tag for a 16- or
// 32-byte key.
func newAEAD(raw []byte) (cipher.AEAD, error) {
	if len(raw) != 16 && len(raw) != 32 {
		return nil, fmt.Errorf("%w: AES key must be 16 or 32 bytes, got %d", hsm.ErrInvalidArgument, len(raw))
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", hsm.ErrInvalidArgument, err)
	}
	return cipher.NewGCM(block) // standard 12-byte nonce, 16-byte tag
}

// sealParts returns the raw parts iv, AES-GCM(plaintext, aad) in one
// allocation. Callers pass a fresh random iv; tests pass known-answer ivs.
func sealParts(a cipher.AEAD, iv, plaintext, aad []byte) hsm.Sealed {
	buf := make([]byte, hsm.IVSize, hsm.IVSize+len(plaintext)+hsm.TagSize)
	copy(buf, iv)
	ct := a.Seal(buf[hsm.IVSize:], buf[:hsm.IVSize], plaintext, aad)
	return hsm.Sealed{IV: buf[:hsm.IVSize:hsm.IVSize], Ciphertext: ct}
}

// seal returns the framed blob SealedV1 || iv || AES-GCM(plaintext, aad)
// that key files and WrapKey store.
func seal(a cipher.AEAD, iv, plaintext, aad []byte) []byte {
	out := make([]byte, hsm.SealedHeader, hsm.SealedOverhead+len(plaintext))
	out[0] = hsm.SealedV1
	copy(out[1:hsm.SealedHeader], iv)
	return a.Seal(out, out[1:hsm.SealedHeader], plaintext, aad)
}

// randomIV returns a fresh random 96-bit IV.
func randomIV() ([hsm.IVSize]byte, error) {
	var iv [hsm.IVSize]byte
	if _, err := rand.Read(iv[:]); err != nil {
		return iv, fmt.Errorf("%w: random IV: %v", hsm.ErrUnavailable, err)
	}
	return iv, nil
}

// sealRandom seals under a fresh random IV and frames the result.
func sealRandom(a cipher.AEAD, plaintext, aad []byte) ([]byte, error) {
	iv, err := randomIV()
	if err != nil {
		return nil, err
	}
	return seal(a, iv[:], plaintext, aad), nil
}

// openParts reverses sealParts. Every failure, parts of the wrong size
// included, is hsm.ErrDecrypt and nothing more.
func openParts(a cipher.AEAD, s hsm.Sealed, aad []byte) ([]byte, error) {
	if s.Check() != nil {
		// Checked before Open: crypto/cipher panics on a wrong nonce size.
		return nil, hsm.ErrDecrypt
	}
	pt, err := a.Open(nil, s.IV, s.Ciphertext, aad)
	if err != nil {
		return nil, hsm.ErrDecrypt
	}
	if pt == nil {
		pt = []byte{}
	}
	return pt, nil
}

// open reverses seal (a framed blob). Every failure is hsm.ErrDecrypt and
// nothing more.
func open(a cipher.AEAD, blob, aad []byte) ([]byte, error) {
	s, err := hsm.ParseSealed(blob)
	if err != nil {
		return nil, hsm.ErrDecrypt
	}
	return openParts(a, s, aad)
}

func keyFileAAD(id string) []byte {
	return append([]byte(keyFilePrefix), id...)
}

func fileName(id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(id)) + keyFileExt
}

// Open opens (creating when needed) the development key store in dir and
// loads every key into memory. See the package comment for the layout and
// for what makes Open refuse to start.
func Open(dir string) (*Backend, error) {
	if dir == "" {
		return nil, fmt.Errorf("%w: empty directory", hsm.ErrInvalidArgument)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("devhsm: %w", err)
	}
	rootRaw, err := loadOrCreateRoot(filepath.Join(dir, rootKeyFile))
	if err != nil {
		return nil, err
	}
	root, err := newKey(rootRaw)
	if err != nil {
		hsm.Zero(rootRaw)
		return nil, err
	}
	b := &Backend{
		keysPath: filepath.Join(dir, keysDir),
		root:     root,
		keys:     map[string]*key{hsm.RootKeyID: root},
	}
	if err := b.loadKeys(); err != nil {
		b.wipeAll()
		return nil, err
	}
	return b, nil
}

// checkMode fails with ErrInsecurePermissions when group or others have any
// access to fi.
func checkMode(fi fs.FileInfo, what string) error {
	if fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("%w: %s has mode %#o", ErrInsecurePermissions, what, fi.Mode().Perm())
	}
	return nil
}

func loadOrCreateRoot(path string) ([]byte, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		raw := make([]byte, rootKeySize)
		if _, err := rand.Read(raw); err != nil {
			return nil, fmt.Errorf("%w: random root key: %v", hsm.ErrUnavailable, err)
		}
		if err := writeFileAtomic(filepath.Dir(path), filepath.Base(path), raw, true); err != nil {
			hsm.Zero(raw)
			return nil, err
		}
		return raw, nil
	}
	if err != nil {
		return nil, fmt.Errorf("devhsm: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("devhsm: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s is not a regular file", ErrCorrupt, rootKeyFile)
	}
	if err := checkMode(fi, rootKeyFile); err != nil {
		return nil, err
	}
	if fi.Size() != rootKeySize {
		return nil, fmt.Errorf("%w: %s has %d bytes, want %d", ErrCorrupt, rootKeyFile, fi.Size(), rootKeySize)
	}
	raw := make([]byte, rootKeySize)
	if _, err := io.ReadFull(f, raw); err != nil {
		hsm.Zero(raw)
		return nil, fmt.Errorf("%w: reading %s: %v", ErrCorrupt, rootKeyFile, err)
	}
	return raw, nil
}

func (b *Backend) loadKeys() error {
	if err := os.Mkdir(b.keysPath, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("devhsm: %w", err)
	}
	fi, err := os.Lstat(b.keysPath)
	if err != nil {
		return fmt.Errorf("devhsm: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%w: %s is not a directory", ErrCorrupt, keysDir)
	}
	if err := checkMode(fi, keysDir); err != nil {
		return err
	}
	entries, err := os.ReadDir(b.keysPath)
	if err != nil {
		return fmt.Errorf("devhsm: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, tmpPrefix) {
			// Left over by a crash before rename: never a live key.
			_ = os.Remove(filepath.Join(b.keysPath, name))
			continue
		}
		if !strings.HasSuffix(name, keyFileExt) {
			continue
		}
		if err := b.loadKeyFile(name); err != nil {
			return err
		}
	}
	return nil
}

func (b *Backend) loadKeyFile(name string) error {
	idBytes, err := base64.RawURLEncoding.DecodeString(strings.TrimSuffix(name, keyFileExt))
	id := string(idBytes)
	if err != nil || validateID(id) != nil || id == hsm.RootKeyID || fileName(id) != name {
		return fmt.Errorf("%w: bad key file name %q", ErrCorrupt, name)
	}
	path := filepath.Join(b.keysPath, name)
	fi, err := os.Lstat(path)
	if err != nil {
		return fmt.Errorf("devhsm: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%w: key file %q is not a regular file", ErrCorrupt, name)
	}
	if err := checkMode(fi, "key file "+name); err != nil {
		return err
	}
	blob, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("devhsm: %w", err)
	}
	raw, err := open(b.root.aead, blob, keyFileAAD(id))
	if err != nil {
		return fmt.Errorf("%w: key file %q does not open under the root key", ErrCorrupt, name)
	}
	k, err := newKey(raw)
	if err != nil {
		hsm.Zero(raw)
		return fmt.Errorf("%w: key file %q holds a bad key", ErrCorrupt, name)
	}
	b.keys[id] = k
	return nil
}

// writeFileAtomic writes data to dir/name with mode 0600 through a temporary
// file, fsync and rename, then fsyncs dir. With exclusive it fails with
// hsm.ErrKeyExists instead of replacing an existing file.
func writeFileAtomic(dir, name string, data []byte, exclusive bool) error {
	f, err := os.CreateTemp(dir, tmpPrefix+"*") // mode 0600
	if err != nil {
		return fmt.Errorf("devhsm: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after a successful rename or link
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("devhsm: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("devhsm: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("devhsm: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("devhsm: %w", err)
	}
	dst := filepath.Join(dir, name)
	if exclusive {
		// A hard link never replaces an existing file, even one written by
		// another process behind our back.
		if err := os.Link(tmp, dst); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return hsm.ErrKeyExists
			}
			return fmt.Errorf("devhsm: %w", err)
		}
	} else if err := os.Rename(tmp, dst); err != nil {
		return fmt.Errorf("devhsm: %w", err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("devhsm: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("devhsm: %w", err)
	}
	return nil
}

func validateID(id string) error {
	if id == "" || len(id) > MaxIDLen {
		return fmt.Errorf("%w: key id must be 1 to %d bytes", hsm.ErrInvalidArgument, MaxIDLen)
	}
	return nil
}

// GenerateKey creates a random AES key of bits (128 or 256) under id.
func (b *Backend) GenerateKey(ctx context.Context, id string, bits int) error {
	if bits != 128 && bits != 256 {
		return fmt.Errorf("%w: key size must be 128 or 256 bits, got %d", hsm.ErrInvalidArgument, bits)
	}
	raw := make([]byte, bits/8)
	if _, err := rand.Read(raw); err != nil {
		return fmt.Errorf("%w: random key: %v", hsm.ErrUnavailable, err)
	}
	return b.store(ctx, id, raw)
}

// ImportKey stores a copy of material (16 or 32 bytes) under id. The caller
// keeps ownership of material and should zero it.
func (b *Backend) ImportKey(ctx context.Context, id string, material []byte) error {
	if len(material) != 16 && len(material) != 32 {
		return fmt.Errorf("%w: AES key must be 16 or 32 bytes, got %d", hsm.ErrInvalidArgument, len(material))
	}
	return b.store(ctx, id, bytes.Clone(material))
}

// store persists raw under id and keeps it in memory; it owns raw and zeroes
// it on failure.
func (b *Backend) store(ctx context.Context, id string, raw []byte) (err error) {
	defer func() {
		if err != nil {
			hsm.Zero(raw)
		}
	}()
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := validateID(id); err != nil {
		return err
	}
	k, err := newKey(raw)
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return hsm.ErrClosed
	}
	if _, ok := b.keys[id]; ok {
		return fmt.Errorf("%w: %q", hsm.ErrKeyExists, id)
	}
	blob, err := sealRandom(b.root.aead, raw, keyFileAAD(id))
	if err != nil {
		return err
	}
	if err := writeFileAtomic(b.keysPath, fileName(id), blob, true); err != nil {
		if errors.Is(err, hsm.ErrKeyExists) {
			return fmt.Errorf("%w: %q", hsm.ErrKeyExists, id)
		}
		return err
	}
	b.keys[id] = k
	return nil
}

// DestroyKey deletes key id from disk and zeroes it in memory. The root key
// cannot be destroyed.
func (b *Backend) DestroyKey(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if id == hsm.RootKeyID {
		return fmt.Errorf("%w: the root key cannot be destroyed", hsm.ErrInvalidArgument)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return hsm.ErrClosed
	}
	k, ok := b.keys[id]
	if !ok {
		return fmt.Errorf("%w: %q", hsm.ErrKeyNotFound, id)
	}
	if err := os.Remove(filepath.Join(b.keysPath, fileName(id))); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("devhsm: %w", err)
	}
	delete(b.keys, id)
	k.wipe()
	return syncDir(b.keysPath)
}

// ListKeys returns the sorted ids starting with prefix, the root key
// (hsm.RootKeyID) included.
func (b *Backend) ListKeys(ctx context.Context, prefix string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return nil, hsm.ErrClosed
	}
	ids := []string{}
	for id := range b.keys {
		if strings.HasPrefix(id, prefix) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// reservedRootAAD reports whether aad belongs to one of the domains the root
// key uses internally, which Encrypt and Decrypt must not reach.
func reservedRootAAD(id string, aad []byte) bool {
	return id == hsm.RootKeyID &&
		(bytes.HasPrefix(aad, wrapPrefix) || bytes.HasPrefix(aad, []byte(keyFilePrefix)))
}

// Encrypt seals plaintext (at most MaxPlaintext bytes) under key id with a
// fresh random IV and returns the raw parts (IV and ciphertext || tag).
func (b *Backend) Encrypt(ctx context.Context, id string, plaintext, aad []byte) (hsm.Sealed, error) {
	if err := ctx.Err(); err != nil {
		return hsm.Sealed{}, err
	}
	if len(plaintext) > MaxPlaintext {
		return hsm.Sealed{}, fmt.Errorf("%w: plaintext longer than %d bytes", hsm.ErrInvalidArgument, MaxPlaintext)
	}
	if reservedRootAAD(id, aad) {
		return hsm.Sealed{}, fmt.Errorf("%w: reserved AAD prefix for the root key", hsm.ErrInvalidArgument)
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	k, err := b.lookup(id)
	if err != nil {
		return hsm.Sealed{}, err
	}
	iv, err := randomIV()
	if err != nil {
		return hsm.Sealed{}, err
	}
	return sealParts(k.aead, iv[:], plaintext, aad), nil
}

// Decrypt opens the parts produced by Encrypt under key id with the same
// aad. Every authentication failure and every part of the wrong size is
// hsm.ErrDecrypt.
func (b *Backend) Decrypt(ctx context.Context, id string, sealed hsm.Sealed, aad []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	k, err := b.lookup(id)
	if err != nil {
		return nil, err
	}
	if reservedRootAAD(id, aad) {
		return nil, hsm.ErrDecrypt
	}
	return openParts(k.aead, sealed, aad)
}

// lookup must be called with b.mu held.
func (b *Backend) lookup(id string) (*key, error) {
	if b.closed {
		return nil, hsm.ErrClosed
	}
	k, ok := b.keys[id]
	if !ok {
		return nil, fmt.Errorf("%w: %q", hsm.ErrKeyNotFound, id)
	}
	return k, nil
}

// WrapKey seals material (1 to MaxPlaintext bytes) under the root key with
// AAD hsm.WrapAAD(aad).
func (b *Backend) WrapKey(ctx context.Context, material, aad []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(material) == 0 || len(material) > MaxPlaintext {
		return nil, fmt.Errorf("%w: key material must be 1 to %d bytes", hsm.ErrInvalidArgument, MaxPlaintext)
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return nil, hsm.ErrClosed
	}
	return sealRandom(b.root.aead, material, hsm.WrapAAD(aad))
}

// UnwrapKey reverses WrapKey. The caller must zero the result when done.
func (b *Backend) UnwrapKey(ctx context.Context, wrapped, aad []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return nil, hsm.ErrClosed
	}
	return open(b.root.aead, wrapped, hsm.WrapAAD(aad))
}

// Random returns n (0 to MaxRandom) bytes from crypto/rand.
func (b *Backend) Random(ctx context.Context, n int) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if n < 0 || n > MaxRandom {
		return nil, fmt.Errorf("%w: random length must be 0 to %d", hsm.ErrInvalidArgument, MaxRandom)
	}
	if b.isClosed() {
		return nil, hsm.ErrClosed
	}
	out := make([]byte, n)
	if _, err := rand.Read(out); err != nil {
		return nil, fmt.Errorf("%w: %v", hsm.ErrUnavailable, err)
	}
	return out, nil
}

// Health returns nil while the backend is open and hsm.ErrClosed after Close.
func (b *Backend) Health(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if b.isClosed() {
		return hsm.ErrClosed
	}
	return nil
}

// Stats reports Size 0 (there is no session pool) and Available while open.
func (b *Backend) Stats() hsm.Stats {
	return hsm.Stats{Available: !b.isClosed()}
}

func (b *Backend) isClosed() bool {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.closed
}

// Close zeroes every key held in memory. Later calls fail with
// hsm.ErrClosed; closing twice is a no-op.
func (b *Backend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	b.wipeAll()
	return nil
}

func (b *Backend) wipeAll() {
	for id, k := range b.keys {
		k.wipe()
		delete(b.keys, id)
	}
	b.root.wipe()
}
