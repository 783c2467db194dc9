package kms

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/kmsgo/kmsgo/server/internal/ciphertext"
)

// KeyRef is a resolved key reference: the key id and every alias naming it
// (full names, "alias/orders"), for policy checks.
type KeyRef struct {
	KeyID   string
	Aliases []string

	res []string // Resources, precomputed for cached references (read-only)
}

// Resources returns the policy resources of the key: "key/<id>" and its
// aliases. The caller must not modify the slice.
func (k KeyRef) Resources() []string {
	if k.res != nil {
		return k.res
	}
	out := make([]string, 0, 1+len(k.Aliases))
	out = append(out, "key/"+k.KeyID)
	return append(out, k.Aliases...)
}

// refCache holds ResolveKey answers for the metadata TTL. Alias changes
// made through this Service drop it.
type refCache struct {
	mu sync.Mutex
	m  map[string]refEntry
}

type refEntry struct {
	ref    KeyRef
	loaded time.Time
}

func (c *refCache) clear() {
	c.mu.Lock()
	c.m = nil
	c.mu.Unlock()
}

// ResolveKey turns a key id or alias name into the key id and its aliases.
// It fails with ErrValidation for an empty reference and ErrNotFound for an
// unknown key or alias. Answers are served from memory for the metadata
// TTL (the bound within which a change on another replica shows here).
func (s *Service) ResolveKey(ctx context.Context, ref string) (KeyRef, error) {
	if s.ttl > 0 {
		s.refs.mu.Lock()
		e, ok := s.refs.m[ref]
		s.refs.mu.Unlock()
		if ok && s.fresh(e.loaded) {
			return e.ref, nil
		}
	}
	loaded := time.Now()
	id, err := s.resolve(ctx, ref, true)
	if err != nil {
		return KeyRef{}, err
	}
	if _, err := s.cachedKey(ctx, id); err != nil { // proves the key exists
		return KeyRef{}, err
	}
	names, err := s.st.AliasNames(ctx, []string{id})
	if err != nil {
		return KeyRef{}, err
	}
	kr := KeyRef{KeyID: id, Aliases: names[id]}
	kr.res = kr.Resources()
	if s.ttl > 0 {
		s.refs.mu.Lock()
		if s.refs.m == nil || len(s.refs.m) > 10000 {
			s.refs.m = map[string]refEntry{}
		}
		s.refs.m[ref] = refEntry{ref: kr, loaded: loaded}
		s.refs.mu.Unlock()
	}
	return kr, nil
}

// Ciphertext is a ciphertext blob parsed once: transports read the key it
// names (to authorize the caller) and hand it to DecryptCiphertext or
// ReEncryptCiphertext without parsing it again.
type Ciphertext struct {
	b   ciphertext.Blob
	err error // the opaque parse failure, with its reason
}

// ParseCiphertext parses raw. A blob that does not parse gives a
// Ciphertext whose KeyID is "" and whose use fails with ErrInvalidCiphertext.
func ParseCiphertext(raw []byte) Ciphertext {
	b, err := ciphertext.Parse(raw)
	switch {
	case err == nil:
		if !ValidKeyID(b.KeyID) {
			return Ciphertext{err: invalidCiphertext(ReasonKeyNotFound)}
		}
		return Ciphertext{b: b}
	case errors.Is(err, ciphertext.ErrUnknownFormat):
		return Ciphertext{err: invalidCiphertext(ReasonUnknownFormat)}
	default:
		return Ciphertext{err: invalidCiphertext(ReasonMalformed)}
	}
}

// KeyID returns the key named inside the blob ("" if it did not parse).
func (c Ciphertext) KeyID() string { return c.b.KeyID }

// Err returns nil for a parsed blob and an ErrInvalidCiphertext otherwise.
func (c Ciphertext) Err() error { return c.err }

// ResolveCiphertext returns the key named inside c with its aliases. An
// unparsable blob or an unknown key is the opaque ErrInvalidCiphertext.
func (s *Service) ResolveCiphertext(ctx context.Context, c Ciphertext) (KeyRef, error) {
	if c.err != nil {
		return KeyRef{}, c.err
	}
	k, err := s.ResolveKey(ctx, c.b.KeyID)
	if errors.Is(err, ErrNotFound) {
		return KeyRef{}, invalidCiphertext(ReasonKeyNotFound)
	}
	return k, err
}

// DecryptCiphertext is Decrypt of an already parsed blob: c is not parsed
// again, and its parts go to the backend as they are. keyID, when not "",
// must name the blob's key (else ReasonKeyMismatch); a transport that has
// checked the caller's key id against c.KeyID() itself passes "".
func (s *Service) DecryptCiphertext(ctx context.Context, c Ciphertext, encryptionContext map[string]string, keyID string) (*DecryptOutput, error) {
	return s.decrypt(ctx, c, encryptionContext, keyID, OpDecrypt)
}

// ReEncryptCiphertext is ReEncrypt of an already parsed blob
// (in.CiphertextBlob is ignored; in.SourceKeyID as keyID in
// DecryptCiphertext).
func (s *Service) ReEncryptCiphertext(ctx context.Context, c Ciphertext, in ReEncryptInput) (*ReEncryptOutput, error) {
	return s.reEncrypt(ctx, c, in)
}

// MetadataTTL is the bound within which a change made on another replica
// shows on this one (Config.MetadataTTL; <= 0: no caching). Transports
// that cache answers use the same bound.
func (s *Service) MetadataTTL() time.Duration { return s.ttl }
