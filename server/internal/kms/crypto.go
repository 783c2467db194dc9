package kms

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/kmsgo/kmsgo/hsm"
	"github.com/kmsgo/kmsgo/server/internal/ciphertext"
	"github.com/kmsgo/kmsgo/server/internal/store"
)

func canonicalContext(ec map[string]string) ([]byte, error) {
	b, err := ciphertext.CanonicalContext(ec)
	if err != nil {
		return nil, fmt.Errorf("%w: encryption_context: %v", ErrValidation, err)
	}
	return b, nil
}

// encryptWith encrypts plaintext under the primary version of key
// idOrAlias, served from the metadata cache (no database query while fresh).
func (s *Service) encryptWith(ctx context.Context, idOrAlias string, op Operation, plaintext []byte, ec map[string]string) (*EncryptOutput, error) {
	cc, err := canonicalContext(ec)
	if err != nil {
		return nil, err
	}
	id, err := s.resolve(ctx, idOrAlias, true)
	if err != nil {
		return nil, err
	}
	e, err := s.cachedKey(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := checkState(op, e.key.State); err != nil {
		return nil, err
	}
	v, ok := e.versions[e.key.PrimaryVersion]
	if !ok || v.State != store.VersionEnabled {
		return nil, fmt.Errorf("kms: key %s has no usable primary version", id)
	}
	// The blob is built straight from the parts the seal returns: one copy
	// into the encoded blob, no intermediate framing.
	b := ciphertext.Blob{KeyID: id, KeyVersion: uint32(v.Version)}
	b.IV, b.Sealed, err = s.seal(ctx, &e.key, &v, plaintext, b.AAD(cc))
	if err != nil {
		return nil, err
	}
	raw, err := b.Encode()
	if err != nil {
		return nil, err
	}
	return &EncryptOutput{KeyID: id, KeyVersion: int(v.Version), CiphertextBlob: raw}, nil
}

// Encrypt encrypts up to 4096 bytes under the primary version of a key.
func (s *Service) Encrypt(ctx context.Context, in EncryptInput) (*EncryptOutput, error) {
	if len(in.Plaintext) == 0 || len(in.Plaintext) > MaxPlaintextSize {
		return nil, validationf("plaintext must be 1-%d bytes", MaxPlaintextSize)
	}
	return s.encryptWith(ctx, in.KeyID, OpEncrypt, in.Plaintext, in.EncryptionContext)
}

// Decrypt decrypts a ciphertext blob. The key and version come from the
// blob; a KeyID given by the caller must name the same key. Every failure to
// decrypt is ErrInvalidCiphertext (see ReasonCode); a key whose state forbids
// decryption gives ErrInvalidKeyState, a retired (disabled) version
// ErrKeyVersionDisabled. A success counts as a use of the version (see
// ListKeyVersions). The blob is parsed once; transports that parsed it
// already (to authorize) call DecryptCiphertext instead.
func (s *Service) Decrypt(ctx context.Context, in DecryptInput) (*DecryptOutput, error) {
	return s.decrypt(ctx, ParseCiphertext(in.CiphertextBlob), in.EncryptionContext, in.KeyID, OpDecrypt)
}

// decrypt opens the parsed blob c. named, when not "", is the key the
// caller said the blob is under (id or alias): a different key is
// ReasonKeyMismatch. Transports that matched it themselves pass "".
func (s *Service) decrypt(ctx context.Context, c Ciphertext, ec map[string]string, named string, op Operation) (*DecryptOutput, error) {
	cc, err := canonicalContext(ec)
	if err != nil {
		return nil, err
	}
	if c.err != nil {
		return nil, c.err
	}
	b := &c.b
	if named != "" {
		id, err := s.resolve(ctx, named, true)
		if errors.Is(err, ErrNotFound) {
			// Naming a key that does not exist is a mismatch like any other.
			return nil, invalidCiphertext(ReasonKeyMismatch)
		}
		if err != nil {
			return nil, err
		}
		if id != b.KeyID {
			return nil, invalidCiphertext(ReasonKeyMismatch)
		}
	}
	e, err := s.cachedKey(ctx, b.KeyID)
	if errors.Is(err, ErrNotFound) {
		return nil, invalidCiphertext(ReasonKeyNotFound)
	}
	if err != nil {
		return nil, err
	}
	if err := checkState(op, e.key.State); err != nil {
		return nil, err
	}
	ver := int64(b.KeyVersion)
	v, ok := e.versions[ver]
	if !ok && ver > e.key.PrimaryVersion {
		// A rotation on another replica may be newer than our cache.
		if e, err = s.loadKey(ctx, b.KeyID); err != nil {
			return nil, err
		}
		if err := checkState(op, e.key.State); err != nil {
			return nil, err
		}
		v, ok = e.versions[ver]
	}
	if !ok {
		return nil, invalidCiphertext(ReasonVersionNotFound)
	}
	switch v.State {
	case store.VersionEnabled:
	case store.VersionDisabled:
		return nil, &versionDisabledError{keyID: b.KeyID, version: ver}
	default:
		return nil, invalidCiphertext(ReasonVersionDestroyed)
	}
	// The parts of the parsed blob go to the HSM or AES-GCM as they are.
	pt, err := s.open(ctx, &e.key, &v, b.IV, b.Sealed, b.AAD(cc))
	if errors.Is(err, errAuth) {
		return nil, invalidCiphertext(ReasonAuthFailed)
	}
	if err != nil {
		return nil, err
	}
	noteUse(e, ver)
	return &DecryptOutput{KeyID: b.KeyID, KeyVersion: int(ver), Plaintext: pt}, nil
}

// DecryptBatch decrypts up to 100 ciphertexts (start-up storms). Results are
// in input order, each with its own error; the call itself fails only on a
// bad batch size.
func (s *Service) DecryptBatch(ctx context.Context, items []DecryptInput) ([]DecryptBatchResult, error) {
	if len(items) == 0 || len(items) > MaxBatchDecrypt {
		return nil, validationf("items must hold 1-%d ciphertexts", MaxBatchDecrypt)
	}
	out := make([]DecryptBatchResult, len(items))
	for i, it := range items {
		if err := ctx.Err(); err != nil {
			out[i].Err = err
			continue
		}
		out[i].Output, out[i].Err = s.Decrypt(ctx, it)
	}
	return out, nil
}

func dataKeySize(in GenerateDataKeyInput) (int, error) {
	switch {
	case in.KeySpec != "" && in.NumberOfBytes != 0:
		return 0, validationf("give key_spec or number_of_bytes, not both")
	case in.NumberOfBytes != 0:
		if in.NumberOfBytes < 1 || in.NumberOfBytes > MaxDataKeyBytes {
			return 0, validationf("number_of_bytes must be 1-%d", MaxDataKeyBytes)
		}
		return in.NumberOfBytes, nil
	case in.KeySpec == "" || in.KeySpec == KeySpecAES256:
		return 32, nil
	case in.KeySpec == KeySpecAES128:
		return 16, nil
	}
	return 0, validationf("key_spec must be AES_256 or AES_128")
}

// GenerateDataKey returns a fresh data key in plaintext and encrypted under
// the key's primary version. The caller zeroes Plaintext when done.
func (s *Service) GenerateDataKey(ctx context.Context, in GenerateDataKeyInput) (*GenerateDataKeyOutput, error) {
	return s.generateDataKey(ctx, in, OpGenerateDataKey, true)
}

// GenerateDataKeyWithoutPlaintext is GenerateDataKey without the plaintext.
func (s *Service) GenerateDataKeyWithoutPlaintext(ctx context.Context, in GenerateDataKeyInput) (*GenerateDataKeyOutput, error) {
	return s.generateDataKey(ctx, in, OpGenerateDataKeyWithoutPlaintext, false)
}

func (s *Service) generateDataKey(ctx context.Context, in GenerateDataKeyInput, op Operation, withPlaintext bool) (*GenerateDataKeyOutput, error) {
	n, err := dataKeySize(in)
	if err != nil {
		return nil, err
	}
	dk := make([]byte, n)
	if _, err := rand.Read(dk); err != nil {
		return nil, err
	}
	enc, err := s.encryptWith(ctx, in.KeyID, op, dk, in.EncryptionContext)
	if err != nil {
		hsm.Zero(dk)
		return nil, err
	}
	out := &GenerateDataKeyOutput{KeyID: enc.KeyID, KeyVersion: enc.KeyVersion, CiphertextBlob: enc.CiphertextBlob}
	if withPlaintext {
		out.Plaintext = dk
	} else {
		hsm.Zero(dk)
	}
	return out, nil
}

// ReEncrypt decrypts a ciphertext and encrypts it again under the primary
// version of the destination key (default: the source key), without the
// plaintext leaving the service.
func (s *Service) ReEncrypt(ctx context.Context, in ReEncryptInput) (*ReEncryptOutput, error) {
	return s.reEncrypt(ctx, ParseCiphertext(in.CiphertextBlob), in)
}

func (s *Service) reEncrypt(ctx context.Context, c Ciphertext, in ReEncryptInput) (*ReEncryptOutput, error) {
	if _, err := canonicalContext(in.DestinationEncryptionContext); err != nil {
		return nil, err
	}
	src, err := s.decrypt(ctx, c, in.SourceEncryptionContext, in.SourceKeyID, OpReEncrypt)
	if err != nil {
		return nil, err
	}
	defer hsm.Zero(src.Plaintext)
	dst := in.DestinationKeyID
	if dst == "" {
		dst = src.KeyID
	}
	enc, err := s.encryptWith(ctx, dst, OpReEncrypt, src.Plaintext, in.DestinationEncryptionContext)
	if err != nil {
		return nil, err
	}
	return &ReEncryptOutput{SourceKeyID: src.KeyID, SourceKeyVersion: src.KeyVersion, KeyID: enc.KeyID, KeyVersion: enc.KeyVersion, CiphertextBlob: enc.CiphertextBlob}, nil
}

// GenerateRandom returns 1–1024 bytes from the HSM's random generator.
func (s *Service) GenerateRandom(ctx context.Context, numberOfBytes int) ([]byte, error) {
	if numberOfBytes < 1 || numberOfBytes > MaxRandomBytes {
		return nil, validationf("number_of_bytes must be 1-%d", MaxRandomBytes)
	}
	return s.hsm.Random(ctx, numberOfBytes)
}
