package kms

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"

	"github.com/kmsgo/kmsgo/hsm"
	"github.com/kmsgo/kmsgo/server/internal/store"
)

const importTokenLen = 32

func importTokenID(token []byte) string {
	h := sha256.Sum256(token)
	return hex.EncodeToString(h[:])
}

func importAAD(tokenID string) []byte { return []byte("kmsgo/import-key/v1\x00" + tokenID) }

// zeroRSA overwrites the private parts of k that Go exposes (D, the primes
// and the CRT values). Best effort: copies made inside crypto/rsa are left
// to the garbage collector.
func zeroRSA(k *rsa.PrivateKey) {
	if k == nil {
		return
	}
	for _, n := range append([]*big.Int{k.D, k.Precomputed.Dp, k.Precomputed.Dq, k.Precomputed.Qinv}, k.Primes...) {
		if n != nil {
			clear(n.Bits())
			n.SetInt64(0)
		}
	}
}

// GetParametersForImport returns an RSA-2048 public key and an import token
// (valid for Config.ImportTokenTTL) for a PendingImport key. The private key
// is stored wrapped by the HSM root key, so any replica can complete the
// import.
func (s *Service) GetParametersForImport(ctx context.Context, in GetParametersForImportInput) (*ImportParameters, error) {
	if in.WrappingAlgorithm != "" && in.WrappingAlgorithm != WrappingAlgorithmOAEPSHA256 {
		return nil, validationf("wrapping_algorithm must be %s", WrappingAlgorithmOAEPSHA256)
	}
	k, err := s.getKey(ctx, in.KeyID, OpGetParametersForImport)
	if err != nil {
		return nil, err
	}
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	defer zeroRSA(priv)
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, err
	}
	defer hsm.Zero(der)
	pub, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		return nil, err
	}
	token := make([]byte, importTokenLen)
	if _, err := rand.Read(token); err != nil {
		return nil, err
	}
	tid := importTokenID(token)
	wrapped, err := s.hsm.WrapKey(ctx, der, importAAD(tid))
	if err != nil {
		return nil, fmt.Errorf("kms: wrap import key: %w", err)
	}
	now := s.now()
	t := store.ImportToken{ID: tid, KeyID: k.ID, WrappedPrivateKey: wrapped, ExpiresAt: now.Add(s.importTTL), CreatedAt: now}
	if err := s.st.CreateImportToken(ctx, &t); err != nil {
		return nil, storeErr(err)
	}
	return &ImportParameters{KeyID: k.ID, ImportToken: token, PublicKey: pub, ValidTo: t.ExpiresAt.UTC()}, nil
}

// ImportKeyMaterial completes a BYOK import: it decrypts the RSA-OAEP-SHA-256
// wrapped material (16 bytes for AES_128, 32 for AES_256 keys) with the
// token's private key, stores it as version 1 (an HSM object for HSM keys,
// root-wrapped for SOFTWARE keys) and enables the key. Plain material is
// never accepted. Tokens are single-use per key: all are dropped on success.
func (s *Service) ImportKeyMaterial(ctx context.Context, in ImportKeyMaterialInput) (*KeyMetadata, error) {
	if len(in.ImportToken) != importTokenLen {
		return nil, validationf("import_token is invalid")
	}
	if len(in.EncryptedKeyMaterial) == 0 {
		return nil, validationf("encrypted_key_material is required")
	}
	k, err := s.getKey(ctx, in.KeyID, OpImportKeyMaterial)
	if err != nil {
		return nil, err
	}
	tid := importTokenID(in.ImportToken)
	t, err := s.st.GetImportToken(ctx, tid)
	if errors.Is(err, store.ErrNotFound) || err == nil && t.KeyID != k.ID {
		return nil, validationf("import_token is invalid")
	}
	if err != nil {
		return nil, err
	}
	now := s.now()
	if !now.Before(t.ExpiresAt) {
		return nil, validationf("import_token has expired")
	}
	der, err := s.hsm.UnwrapKey(ctx, t.WrappedPrivateKey, importAAD(tid))
	if err != nil {
		return nil, fmt.Errorf("kms: unwrap import key: %w", err)
	}
	pk, err := x509.ParsePKCS8PrivateKey(der)
	hsm.Zero(der)
	if err != nil {
		return nil, fmt.Errorf("kms: import key: %w", err)
	}
	priv, ok := pk.(*rsa.PrivateKey)
	if !ok {
		return nil, errors.New("kms: import key is not RSA")
	}
	defer zeroRSA(priv)
	mat, err := rsa.DecryptOAEP(sha256.New(), nil, priv, in.EncryptedKeyMaterial, nil)
	if err != nil {
		return nil, validationf("encrypted_key_material does not decrypt with the import parameters")
	}
	defer hsm.Zero(mat)
	if len(mat)*8 != k.KeySpec.Bits() {
		return nil, validationf("key material must be %d bytes for %s", k.KeySpec.Bits()/8, k.KeySpec)
	}
	v, plain, err := s.newVersion(ctx, &k, 1, mat, now)
	if err != nil {
		return nil, err
	}
	if err := checkVersionInvariants(&k, nil, v); err != nil {
		s.discardVersion(ctx, v, plain)
		return nil, err
	}
	fields := map[string]any{"primary_version": int64(1), "state": KeyStateEnabled}
	if err := s.st.AddVersion(ctx, &v, k.Revision, fields, now); err != nil {
		s.discardVersion(ctx, v, plain)
		return nil, storeErr(err)
	}
	if plain != nil {
		s.material.put(k.ID, 1, plain)
		hsm.Zero(plain)
	}
	_ = s.st.DeleteImportTokens(ctx, k.ID, now)
	s.invalidate(k.ID)
	return s.DescribeKey(ctx, k.ID)
}
