// Package kms is the transport-free key management service of kmsd: master
// keys with versions, their lifecycle, BYOK import and the cryptographic
// operations. The HTTP API (server/internal/httpapi), kmsctl and any later protocol
// adapter are thin layers over Service; each HTTP operation maps to one
// method with an input and an output struct (JSON names as in
// server/internal/httpapi/API.md).
//
// # Key model
//
// A master key has an id (UUID), aliases ("alias/..."), a description, tags,
// a spec (AES_256; AES_128 only for imported material), a protection level
// and versions, one of which is primary. HSM keys keep every version as a
// non-extractable HSM object (id prefix HSMObjectPrefix); SOFTWARE keys draw
// version material from the HSM RNG and store it wrapped by the HSM root
// key, unwrapping it into a bounded in-memory LRU (zeroed on eviction).
// Encrypt uses the primary version; Decrypt uses the version named in the
// ciphertext, so rotation never breaks old ciphertexts.
//
// # Ciphertexts and encryption context
//
// Ciphertexts use the canonical blob of package server/internal/ciphertext (format
// version, key id, key version, IV, AES-GCM output). The blob header and
// the canonically encoded encryption context are the GCM additional data:
// the context must match exactly (case-sensitive, every pair, no extra
// pairs); pair order does not matter. Every decryption failure is the one
// opaque ErrInvalidCiphertext; ReasonCode gives the precise reason to audit
// and logs only.
//
// A blob is parsed once per request: transports call ParseCiphertext, read
// the key it names to authorize the caller, and pass the parsed Ciphertext
// to DecryptCiphertext or ReEncryptCiphertext. For HSM keys the blob's IV
// and AES-GCM output go to hsm.Backend.Decrypt as raw parts, and
// hsm.Backend.Encrypt's raw parts become the blob directly; only wrapped
// SOFTWARE version material keeps the HSM's framed form.
//
// # Key states and operations
//
// Modelled on AWS KMS. ✓ allowed, ✗ ErrInvalidKeyState.
//
//	operation                         Enabled Disabled PendingDeletion PendingImport Destroyed
//	DescribeKey, ListKeyVersions         ✓       ✓           ✓              ✓           ✓
//	GetRotationPolicy, ListTags          ✓       ✓           ✓              ✓           ✓
//	UpdateKey                            ✓       ✓           ✗              ✓           ✗
//	EnableKey, DisableKey                ✓       ✓           ✗              ✗           ✗
//	EnableKeyVersion, DisableKeyVersion  ✓       ✓           ✗              ✗           ✗
//	ScheduleKeyDeletion                  ✓       ✓           ✗              ✓           ✗
//	CancelKeyDeletion                    ✗       ✗           ✓              ✗           ✗
//	RotateKey                            ✓       ✗           ✗              ✗           ✗
//	SetRotationPolicy                    ✓       ✓           ✗              ✗           ✗
//	CreateAlias, UpdateAlias (target)    ✓       ✓           ✗              ✓           ✗
//	TagKey, UntagKey                     ✓       ✓           ✗              ✓           ✗
//	GetParametersForImport               ✗       ✗           ✗              ✓           ✗
//	ImportKeyMaterial                    ✗       ✗           ✗              ✓           ✗
//	Encrypt, Decrypt, ReEncrypt          ✓       ✗           ✗              ✗           ✗
//	GenerateDataKey(WithoutPlaintext)    ✓       ✗           ✗              ✗           ✗
//
// DeleteAlias, ListAliases, ListKeys and GenerateRandom do not depend on a
// key state. Decrypt is gated on the key named inside the ciphertext. A
// cancelled deletion leaves the key Disabled (PendingImport if it never had
// material). Destroying a key deletes its aliases; the key record stays,
// Destroyed, for audit. Keys with imported material
// (origin EXTERNAL) cannot be rotated (ErrValidation), as in AWS.
//
// # Several replicas
//
// Several Services may share one database. Lifecycle operations always read
// the database and write with compare-and-swap on a per-key revision, so two
// replicas rotating one key at once create exactly one version (the loser
// gets ErrConcurrentUpdate). The crypto path serves key metadata (state,
// versions, aliases) from memory for at most Config.MetadataTTL (default 2s)
// and issues no database query while fresh: a key disabled, scheduled for
// deletion or re-aliased on one replica is honoured by every other replica
// within MetadataTTL. A ciphertext naming a version newer than the cache
// forces a reload, so a rotation elsewhere never makes fresh ciphertexts
// undecryptable.
//
// # Version usage and retirement
//
// Every successful decryption (Decrypt, DecryptBatch items, the source of
// ReEncrypt, and so every transport's) counts against the key version named
// in the ciphertext: a counter kept in memory on the crypto path (one
// atomic add on a counter found through the key's cache entry: no lock, no
// clock read, no database access) and added to the version's row every
// Config.UsageFlushInterval (default 10s), at Close and on FlushUsage.
// Replicas add to the stored counters, never overwrite them. The flush
// stamps the version's last-used time with its own time, so that time is
// late by at most one flush interval, never early. ListKeyVersions shows
// the stored counts plus this replica's unflushed ones (as used now).
//
// DisableKeyVersion retires a version for decryption: decrypting under it
// then fails with ErrKeyVersionDisabled (on other replicas within
// MetadataTTL), while its material is kept; EnableKeyVersion undoes it.
// Only destroying the key destroys a version's material. The primary
// version cannot be disabled (rotate first). Unless forced, the call is
// refused with ErrVersionInUse while the version was used within
// Config.RetirementQuietPeriod (default 24h): the check flushes this
// replica's counts first, so it sees this replica's latest use and every
// other replica's uses up to one flush interval ago, which the quiet period
// (much longer than the flush interval) covers.
//
// # Jobs
//
// DestroyDueKeys (deletion window over), RotateDueKeys (rotation policy) and
// CleanupOrphans (HSM objects left by failed rotations) are meant for cron
// jobs; each is safe to run on several replicas at once.
package kms
