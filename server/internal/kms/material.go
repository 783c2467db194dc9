package kms

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/kmsgo/kmsgo/hsm"
	"github.com/kmsgo/kmsgo/server/internal/ciphertext"
	"github.com/kmsgo/kmsgo/server/internal/store"
)

// HSMObjectPrefix starts the id (CKA_ID/CKA_LABEL) of every HSM object that
// holds an HSM-protected master key version. The full id is
// "kmsgo-cmk-<key id>-v<version>-t<unix seconds, hex>-<random hex>.<deployment id>":
// the suffix names the deployment (database) that created the object, so
// deployments sharing a token can tell their objects apart.
const HSMObjectPrefix = "kmsgo-cmk-"

func hsmObjectID(keyID string, version int64, now time.Time, deployment string) (string, error) {
	var r [4]byte
	if _, err := rand.Read(r[:]); err != nil {
		return "", err
	}
	return fmt.Sprintf("%s%s-v%d-t%x-%s.%s", HSMObjectPrefix, keyID, version, now.Unix(), hex.EncodeToString(r[:]), deployment), nil
}

// ownObject reports whether id is an HSM key version object created by
// deployment (its id ends with ".<deployment>").
func ownObject(id, deployment string) bool {
	return deployment != "" && strings.HasPrefix(id, HSMObjectPrefix) && strings.HasSuffix(id, "."+deployment)
}

// materialAAD binds wrapped SOFTWARE material to its key and version.
func materialAAD(keyID string, version int64) []byte {
	return []byte("kmsgo/cmk-material/v1\x00" + keyID + "\x00" + strconv.FormatInt(version, 10))
}

// newVersion makes the material of a new version of k: an HSM object for HSM
// keys, HSM random bytes wrapped by the root key for SOFTWARE keys. If
// material is non-nil it is imported instead of generated. For SOFTWARE
// keys the plaintext material is returned too (the caller caches or zeroes
// it). On error nothing is left behind except, at worst, an HSM object that
// CleanupOrphans will find by its id.
func (s *Service) newVersion(ctx context.Context, k *store.Key, version int64, imported []byte, now time.Time) (store.KeyVersion, []byte, error) {
	v := store.KeyVersion{KeyID: k.ID, Version: version, State: store.VersionEnabled, CreatedAt: now}
	bits := k.KeySpec.Bits()
	if bits == 0 {
		return v, nil, fmt.Errorf("kms: key %s has unknown spec %q", k.ID, k.KeySpec)
	}
	switch k.ProtectionLevel {
	case store.ProtectionHSM:
		id, err := hsmObjectID(k.ID, version, now, s.deployment)
		if err != nil {
			return v, nil, err
		}
		// The intent row comes first: an object is only ever created after
		// this deployment recorded that it is about to create it, and only
		// such recorded, never-committed objects are ever cleaned up.
		if err := s.st.RecordHSMIntent(ctx, &store.HSMIntent{ObjectID: id, KeyID: k.ID, Version: version, CreatedAt: now}); err != nil {
			return v, nil, fmt.Errorf("kms: record HSM object intent: %w", err)
		}
		if imported != nil {
			err = s.hsm.ImportKey(ctx, id, imported)
		} else {
			err = s.hsm.GenerateKey(ctx, id, bits)
		}
		if err != nil {
			return v, nil, fmt.Errorf("kms: create HSM key version: %w", err)
		}
		v.HSMObjectID = id
		return v, nil, nil
	case store.ProtectionSoftware:
		var mat []byte
		if imported != nil {
			mat = append([]byte(nil), imported...)
		} else {
			var err error
			if mat, err = s.hsm.Random(ctx, bits/8); err != nil {
				return v, nil, fmt.Errorf("kms: key material: %w", err)
			}
			if len(mat) != bits/8 {
				hsm.Zero(mat)
				return v, nil, errors.New("kms: HSM returned short random")
			}
		}
		wrapped, err := s.hsm.WrapKey(ctx, mat, materialAAD(k.ID, version))
		if err != nil {
			hsm.Zero(mat)
			return v, nil, fmt.Errorf("kms: wrap key material: %w", err)
		}
		v.WrappedMaterial = wrapped
		return v, mat, nil
	}
	return v, nil, fmt.Errorf("kms: key %s has unknown protection level %q", k.ID, k.ProtectionLevel)
}

// discardVersion undoes newVersion after a failed persist. Failing to
// destroy the HSM object is not fatal: its intent row stays, and
// CleanupOrphans destroys it later.
func (s *Service) discardVersion(ctx context.Context, v store.KeyVersion, mat []byte) {
	hsm.Zero(mat)
	if v.HSMObjectID != "" {
		ctx := context.WithoutCancel(ctx)
		if err := s.hsm.DestroyKey(ctx, v.HSMObjectID); err == nil || errors.Is(err, hsm.ErrKeyNotFound) {
			_ = s.st.DeleteHSMIntent(ctx, v.HSMObjectID)
		}
	}
}

// checkVersionInvariants validates a version before it is persisted.
func checkVersionInvariants(k *store.Key, existing map[int64]store.KeyVersion, v store.KeyVersion) error {
	var max int64
	for n := range existing {
		if n > max {
			max = n
		}
	}
	switch {
	case v.Version != max+1:
		return fmt.Errorf("kms: version invariant: new version %d, highest %d", v.Version, max)
	case k.PrimaryVersion > max:
		return fmt.Errorf("kms: version invariant: primary %d above highest %d", k.PrimaryVersion, max)
	case k.ProtectionLevel == store.ProtectionHSM && (v.HSMObjectID == "" || v.WrappedMaterial != nil):
		return errors.New("kms: version invariant: HSM version without object")
	case k.ProtectionLevel == store.ProtectionSoftware && (len(v.WrappedMaterial) == 0 || v.HSMObjectID != ""):
		return errors.New("kms: version invariant: SOFTWARE version without material")
	}
	return nil
}

// softwareAEAD returns the AES-GCM of a SOFTWARE version, from the cache
// or built from the material unwrapped by the HSM (then cached).
func (s *Service) softwareAEAD(ctx context.Context, v *store.KeyVersion) (cipher.AEAD, error) {
	if a, ok := s.material.aead(v.KeyID, v.Version); ok {
		return a, nil
	}
	m, err := s.hsm.UnwrapKey(ctx, v.WrappedMaterial, materialAAD(v.KeyID, v.Version))
	if err != nil {
		return nil, fmt.Errorf("kms: unwrap key material of %s v%d: %w", v.KeyID, v.Version, err)
	}
	defer hsm.Zero(m)
	a, err := newGCM(m)
	if err != nil {
		return nil, err
	}
	s.material.put(v.KeyID, v.Version, m)
	return a, nil
}

// seal encrypts plaintext under version v with aad; returns IV and sealed
// (ciphertext || tag), the raw parts of the blob.
func (s *Service) seal(ctx context.Context, k *store.Key, v *store.KeyVersion, plaintext, aad []byte) (iv, sealed []byte, err error) {
	if k.ProtectionLevel == store.ProtectionHSM {
		p, err := s.hsm.Encrypt(ctx, v.HSMObjectID, plaintext, aad)
		if err != nil {
			return nil, nil, fmt.Errorf("kms: HSM encrypt: %w", objectLost(err))
		}
		if len(p.IV) != ciphertext.IVSize || len(p.Ciphertext) != len(plaintext)+ciphertext.TagSize {
			return nil, nil, fmt.Errorf("kms: HSM returned malformed parts (IV %d bytes, ciphertext %d bytes)", len(p.IV), len(p.Ciphertext))
		}
		return p.IV, p.Ciphertext, nil
	}
	gcm, err := s.softwareAEAD(ctx, v)
	if err != nil {
		return nil, nil, err
	}
	out := make([]byte, ciphertext.IVSize, ciphertext.IVSize+len(plaintext)+ciphertext.TagSize)
	if _, err := rand.Read(out); err != nil {
		return nil, nil, err
	}
	sealed = gcm.Seal(out[ciphertext.IVSize:], out[:ciphertext.IVSize], plaintext, aad)
	return out[:ciphertext.IVSize], sealed, nil
}

// objectLost turns a missing HSM object of a live version into "HSM
// unavailable": the database says the object exists, so its absence is a
// lost or swapped token (503 from the first request), not a client error
// or a server bug.
func objectLost(err error) error {
	if errors.Is(err, hsm.ErrKeyNotFound) && !errors.Is(err, hsm.ErrUnavailable) {
		return fmt.Errorf("%w: key object missing from the HSM: %w", hsm.ErrUnavailable, err)
	}
	return err
}

// errAuth marks an authentication failure in open.
var errAuth = errors.New("kms: authentication failed")

// open decrypts the parts of a parsed blob; authentication failures are
// errAuth. The HSM gets the parts as they are (no copy, no framing).
func (s *Service) open(ctx context.Context, k *store.Key, v *store.KeyVersion, iv, sealed, aad []byte) ([]byte, error) {
	if k.ProtectionLevel == store.ProtectionHSM {
		pt, err := s.hsm.Decrypt(ctx, v.HSMObjectID, hsm.Sealed{IV: iv, Ciphertext: sealed}, aad)
		if errors.Is(err, hsm.ErrDecrypt) {
			return nil, errAuth
		}
		if err != nil {
			return nil, fmt.Errorf("kms: HSM decrypt: %w", objectLost(err))
		}
		return pt, nil
	}
	gcm, err := s.softwareAEAD(ctx, v)
	if err != nil {
		return nil, err
	}
	pt, err := gcm.Open(nil, iv, sealed, aad)
	if err != nil {
		return nil, errAuth
	}
	return pt, nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("kms: bad key material: %w", err)
	}
	return cipher.NewGCM(b)
}

// destroyVersion destroys a version's material (HSM object or wrapped bytes)
// and marks it destroyed. A missing HSM object counts as destroyed.
func (s *Service) destroyVersion(ctx context.Context, v store.KeyVersion, now time.Time) error {
	if v.HSMObjectID != "" {
		if err := s.hsm.DestroyKey(ctx, v.HSMObjectID); err != nil && !errors.Is(err, hsm.ErrKeyNotFound) {
			return fmt.Errorf("kms: destroy HSM object of %s v%d: %w", v.KeyID, v.Version, err)
		}
	}
	s.material.drop(v.KeyID, v.Version)
	return s.st.MarkVersionDestroyed(ctx, v.KeyID, v.Version, now)
}
