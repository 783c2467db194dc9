package awsapi

import (
	"strings"

	"github.com/kmsgo/kmsgo/hsm"
	"github.com/kmsgo/kmsgo/server/internal/kms"
)

// checkAlgorithm accepts the one encryption algorithm of symmetric keys.
func checkAlgorithm(name, alg string) error {
	switch alg {
	case "", symmetricDefault:
		return nil
	case "RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256", "SM2PKE":
		return awsErr(ExcInvalidKeyUsage, "%s %s is not valid for a symmetric key", name, alg)
	}
	return validationErr("%s %s is not valid", name, quote(alg))
}

func refuseRecipient(r *recipientInfo) error {
	if r != nil {
		return unsupported("Recipient (Nitro Enclaves attestation) is not supported")
	}
	return nil
}

func refuseDryRunModifiers(m []string) error {
	if len(m) > 0 {
		return unsupported("DryRunModifiers are not supported")
	}
	return nil
}

// dryRun answers a DryRun request whose checks passed, as AWS does.
func (c *call) dryRun(mds ...*kms.KeyMetadata) error {
	for _, md := range mds {
		if err := c.usable(md); err != nil {
			return err
		}
	}
	return awsErr(ExcDryRun, "the request would have succeeded, but the DryRun flag is set")
}

func (h *Handler) encrypt(c *call, in *encryptInput) (any, error) {
	c.onDone(func() { hsm.Zero(in.Plaintext) })
	switch {
	case len(in.Plaintext) == 0 || len(in.Plaintext) > kms.MaxPlaintextSize:
		return nil, validationErr("Plaintext must be 1-%d bytes", kms.MaxPlaintextSize)
	}
	if err := checkAlgorithm("EncryptionAlgorithm", in.EncryptionAlgorithm); err != nil {
		return nil, err
	}
	if err := refuseGrants(in.GrantTokens); err != nil {
		return nil, err
	}
	k, err := c.key(in.KeyID, true, c.action)
	if err != nil {
		return nil, err
	}
	if in.DryRun {
		return nil, c.dryRun(k)
	}
	out, err := h.o.KMS.Encrypt(c.ctx, kms.EncryptInput{KeyID: k.KeyID, Plaintext: in.Plaintext, EncryptionContext: in.EncryptionContext})
	if err != nil {
		return nil, c.stateError(err, k.KeyID)
	}
	c.keyVersion = int(out.KeyVersion)
	return encryptOutput{CiphertextBlob: out.CiphertextBlob, KeyID: h.arns.Key(out.KeyID), EncryptionAlgorithm: symmetricDefault}, nil
}

// ciphertextKey parses blob, the one parse of the request (the core gets
// the parsed value), finds the key inside it and authorizes action on it.
// A blob that does not parse or names no existing key is the opaque
// InvalidCiphertextException. named, when set, is the caller's KeyId
// parameter (param is its name for messages): it must resolve to the
// ciphertext's key, else IncorrectKeyException; this is the only check of
// it (the core is not asked again).
func (c *call) ciphertextKey(blob []byte, named, param, action string) (*kms.KeyMetadata, kms.Ciphertext, error) {
	if len(blob) == 0 {
		return nil, kms.Ciphertext{}, validationErr("CiphertextBlob is required")
	}
	if len(blob) > 6144 {
		return nil, kms.Ciphertext{}, validationErr("CiphertextBlob must be at most 6144 bytes")
	}
	ct := kms.ParseCiphertext(blob)
	md, err := c.ciphertextMetadata(ct, named, param, action)
	return md, ct, err
}

func (c *call) ciphertextMetadata(ct kms.Ciphertext, named, param, action string) (*kms.KeyMetadata, error) {
	if err := ct.Err(); err != nil {
		return nil, &Error{Type: ExcInvalidCiphertext, Message: "the ciphertext could not be decrypted", Cause: err, Reason: kms.ReasonCode(err)}
	}
	keyID := ct.KeyID()
	if named != "" {
		ref, err := c.h.arns.ParseKeyRef(named, true)
		if err != nil {
			return nil, err
		}
		want, err := c.h.describe(c.ctx, ref.String())
		if err != nil {
			return nil, notFound(named, err)
		}
		if want.KeyID != keyID {
			c.resources = appendUnique(c.resources, resources(want)...)
			e := awsErr(ExcIncorrectKey, "the key in %s does not match the key that encrypted the ciphertext", param)
			e.Reason = kms.ReasonKeyMismatch
			return nil, e
		}
	}
	md, err := c.h.describe(c.ctx, keyID)
	if err != nil {
		if e := toAWS(err); e.Type == ExcNotFound {
			return nil, &Error{Type: ExcInvalidCiphertext, Message: "the ciphertext could not be decrypted", Cause: err, Reason: kms.ReasonKeyNotFound}
		}
		return nil, err
	}
	return md, c.authorize(action, resources(md)...)
}

func (h *Handler) decrypt(c *call, in *decryptInput) (any, error) {
	if err := refuseRecipient(in.Recipient); err != nil {
		return nil, err
	}
	if err := refuseDryRunModifiers(in.DryRunModifiers); err != nil {
		return nil, err
	}
	if err := checkAlgorithm("EncryptionAlgorithm", in.EncryptionAlgorithm); err != nil {
		return nil, err
	}
	if err := refuseGrants(in.GrantTokens); err != nil {
		return nil, err
	}
	k, ct, err := c.ciphertextKey(in.CiphertextBlob, in.KeyID, "KeyId", c.action)
	if err != nil {
		return nil, err
	}
	if in.DryRun {
		return nil, c.dryRun(k)
	}
	// ct is the parse ciphertextKey made; KeyId was matched there.
	out, err := h.o.KMS.DecryptCiphertext(c.ctx, ct, in.EncryptionContext, "")
	if err != nil {
		return nil, c.stateError(err, k.KeyID)
	}
	c.keyVersion = int(out.KeyVersion)
	c.onDone(func() { hsm.Zero(out.Plaintext) })
	return decryptOutput{KeyID: h.arns.Key(out.KeyID), Plaintext: out.Plaintext, EncryptionAlgorithm: symmetricDefault}, nil
}

func (h *Handler) reEncrypt(c *call, in *reEncryptInput) (any, error) {
	if err := refuseDryRunModifiers(in.DryRunModifiers); err != nil {
		return nil, err
	}
	if err := checkAlgorithm("SourceEncryptionAlgorithm", in.SourceEncryptionAlgorithm); err != nil {
		return nil, err
	}
	if err := checkAlgorithm("DestinationEncryptionAlgorithm", in.DestinationEncryptionAlgorithm); err != nil {
		return nil, err
	}
	if err := refuseGrants(in.GrantTokens); err != nil {
		return nil, err
	}
	if in.DestinationKeyID == "" {
		return nil, validationErr("DestinationKeyId is required")
	}
	src, ct, err := c.ciphertextKey(in.CiphertextBlob, in.SourceKeyID, "SourceKeyId", "kms:ReEncryptFrom")
	if err != nil {
		return nil, err
	}
	dst, err := c.key(in.DestinationKeyID, true, "kms:ReEncryptTo")
	if err != nil {
		return nil, err
	}
	if in.DryRun {
		return nil, c.dryRun(src, dst)
	}
	// ct is the parse ciphertextKey made; SourceKeyId was matched there.
	out, err := h.o.KMS.ReEncryptCiphertext(c.ctx, ct, kms.ReEncryptInput{
		SourceEncryptionContext: in.SourceEncryptionContext,
		DestinationKeyID:        dst.KeyID, DestinationEncryptionContext: in.DestinationEncryptionContext,
	})
	if err != nil {
		return nil, c.stateError(err, src.KeyID, dst.KeyID)
	}
	c.keyVersion = int(out.SourceKeyVersion)
	return reEncryptOutput{CiphertextBlob: out.CiphertextBlob, SourceKeyID: h.arns.Key(out.SourceKeyID), KeyID: h.arns.Key(out.KeyID),
		SourceEncryptionAlgorithm: symmetricDefault, DestinationEncryptionAlgorithm: symmetricDefault}, nil
}

func (h *Handler) generateDataKey(withPlaintext bool) func(c *call, in *generateDataKeyInput) (any, error) {
	return func(c *call, in *generateDataKeyInput) (any, error) {
		if err := refuseRecipient(in.Recipient); err != nil {
			return nil, err
		}
		if err := refuseGrants(in.GrantTokens); err != nil {
			return nil, err
		}
		gi := kms.GenerateDataKeyInput{EncryptionContext: in.EncryptionContext}
		switch {
		case in.NumberOfBytes != nil && in.KeySpec != "":
			return nil, validationErr("specify either NumberOfBytes or KeySpec, not both")
		case in.NumberOfBytes != nil:
			if *in.NumberOfBytes < 1 || *in.NumberOfBytes > kms.MaxDataKeyBytes {
				return nil, validationErr("NumberOfBytes must be 1-%d", kms.MaxDataKeyBytes)
			}
			gi.NumberOfBytes = *in.NumberOfBytes
		case in.KeySpec == "AES_256" || in.KeySpec == "AES_128":
			gi.KeySpec = kms.KeySpec(in.KeySpec)
		case in.KeySpec == "":
			return nil, validationErr("specify either NumberOfBytes or KeySpec")
		default:
			return nil, validationErr("KeySpec must be AES_256 or AES_128")
		}
		k, err := c.key(in.KeyID, true, c.action)
		if err != nil {
			return nil, err
		}
		if in.DryRun {
			return nil, c.dryRun(k)
		}
		gi.KeyID = k.KeyID
		op := h.o.KMS.GenerateDataKey
		if !withPlaintext {
			op = h.o.KMS.GenerateDataKeyWithoutPlaintext
		}
		out, err := op(c.ctx, gi)
		if err != nil {
			return nil, c.stateError(err, k.KeyID)
		}
		c.keyVersion = int(out.KeyVersion)
		pt := out.Plaintext
		c.onDone(func() { hsm.Zero(pt) })
		res := generateDataKeyOutput{CiphertextBlob: out.CiphertextBlob, KeyID: h.arns.Key(out.KeyID)}
		if withPlaintext {
			res.Plaintext = pt
		}
		return res, nil
	}
}

func (h *Handler) generateRandom(c *call, in *generateRandomInput) (any, error) {
	if err := refuseRecipient(in.Recipient); err != nil {
		return nil, err
	}
	if in.CustomKeyStoreID != "" {
		return nil, unsupported("custom key stores are not supported")
	}
	if in.NumberOfBytes == nil || *in.NumberOfBytes < 1 || *in.NumberOfBytes > kms.MaxRandomBytes {
		return nil, validationErr("NumberOfBytes must be 1-%d", kms.MaxRandomBytes)
	}
	if err := c.authorize(c.action); err != nil {
		return nil, err
	}
	b, err := h.o.KMS.GenerateRandom(c.ctx, *in.NumberOfBytes)
	if err != nil {
		return nil, err
	}
	c.onDone(func() { hsm.Zero(b) })
	return generateRandomOutput{Plaintext: b}, nil
}

func (h *Handler) getParametersForImport(c *call, in *getParametersForImportInput) (any, error) {
	switch in.WrappingAlgorithm {
	case kms.WrappingAlgorithmOAEPSHA256:
	case "":
		return nil, validationErr("WrappingAlgorithm is required")
	case "RSAES_PKCS1_V1_5", "RSAES_OAEP_SHA_1", "RSA_AES_KEY_WRAP_SHA_1", "RSA_AES_KEY_WRAP_SHA_256", "SM2PKE":
		return nil, unsupported("WrappingAlgorithm %s is not supported; use %s", in.WrappingAlgorithm, kms.WrappingAlgorithmOAEPSHA256)
	default:
		return nil, validationErr("WrappingAlgorithm %s is not valid", quote(in.WrappingAlgorithm))
	}
	switch in.WrappingKeySpec {
	case "RSA_2048":
	case "":
		return nil, validationErr("WrappingKeySpec is required")
	case "RSA_3072", "RSA_4096", "SM2":
		return nil, unsupported("WrappingKeySpec %s is not supported; use RSA_2048", in.WrappingKeySpec)
	default:
		return nil, validationErr("WrappingKeySpec %s is not valid", quote(in.WrappingKeySpec))
	}
	k, err := c.key(in.KeyID, false, c.action)
	if err != nil {
		return nil, err
	}
	if k.Origin != kms.OriginExternal {
		return nil, unsupported("%s was not created for imported key material (Origin EXTERNAL)", h.arns.Key(k.KeyID))
	}
	p, err := h.o.KMS.GetParametersForImport(c.ctx, kms.GetParametersForImportInput{KeyID: k.KeyID, WrappingAlgorithm: in.WrappingAlgorithm})
	if err != nil {
		return nil, c.stateError(err, k.KeyID)
	}
	return getParametersForImportOutput{KeyID: h.arns.Key(k.KeyID), ImportToken: p.ImportToken, PublicKey: p.PublicKey, ParametersValidTo: epoch(p.ValidTo)}, nil
}

func (h *Handler) importKeyMaterial(c *call, in *importKeyMaterialInput) (any, error) {
	switch {
	case len(in.ImportToken) == 0:
		return nil, validationErr("ImportToken is required")
	case len(in.EncryptedKeyMaterial) == 0:
		return nil, validationErr("EncryptedKeyMaterial is required")
	case in.ExpirationModel == "KEY_MATERIAL_EXPIRES" || in.ValidTo != nil:
		return nil, unsupported("expiring key material is not supported; use KEY_MATERIAL_DOES_NOT_EXPIRE")
	case in.ExpirationModel != "" && in.ExpirationModel != "KEY_MATERIAL_DOES_NOT_EXPIRE":
		return nil, validationErr("ExpirationModel %s is not valid", quote(in.ExpirationModel))
	case in.ImportType != "" && in.ImportType != "NEW_KEY_MATERIAL":
		return nil, unsupported("ImportType %s is not supported", quote(in.ImportType))
	case in.KeyMaterialDescription != "" || in.KeyMaterialID != "":
		return nil, unsupported("KeyMaterialDescription and KeyMaterialId are not supported")
	}
	k, err := c.key(in.KeyID, false, c.action)
	if err != nil {
		return nil, err
	}
	if k.Origin != kms.OriginExternal {
		return nil, unsupported("%s was not created for imported key material (Origin EXTERNAL)", h.arns.Key(k.KeyID))
	}
	_, err = h.o.KMS.ImportKeyMaterial(c.ctx, kms.ImportKeyMaterialInput{KeyID: k.KeyID, ImportToken: in.ImportToken, EncryptedKeyMaterial: in.EncryptedKeyMaterial})
	h.changed()
	if err != nil {
		return nil, importErr(c.stateError(err, k.KeyID))
	}
	return keyIDOutput{KeyID: h.arns.Key(k.KeyID)}, nil
}

// importErr names the import failures the core reports as validation
// errors with AWS's exceptions.
func importErr(err error) error {
	e := toAWS(err)
	if e.Type != ExcValidation {
		return err
	}
	switch msg := e.Message; {
	case strings.Contains(msg, "import_token has expired"):
		e.Type, e.Message = ExcExpiredImportToken, "the import token has expired"
	case strings.Contains(msg, "import_token"):
		e.Type, e.Message = ExcInvalidImportToken, "the import token is not valid for this key"
	case strings.Contains(msg, "does not decrypt"):
		e.Type, e.Message = ExcInvalidCiphertext, "the encrypted key material could not be decrypted with the import parameters"
	case strings.Contains(msg, "key material must be"):
		e.Type = ExcIncorrectKeyMaterial
	}
	return e
}
