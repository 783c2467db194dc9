// Package p11 is the production hsm.Backend: it keeps kmsgo's AES keys inside
// a PKCS#11 token (a network HSM, a PCIe card, or SoftHSM2 in tests) through
// github.com/miekg/pkcs11.
//
// Open loads the module, finds the token by label, logs in on a long-lived
// anchor session and makes sure the deployment's root key exists. After that
// every Backend call borrows one session from a bounded pool (never two
// goroutines on one session), runs its PKCS#11 calls and gives the session
// back. When the pool is exhausted a call waits at most Config.AcquireTimeout
// and then fails with hsm.ErrBusy.
//
// Keys are AES secret keys with CKA_TOKEN, CKA_PRIVATE and CKA_SENSITIVE true
// and CKA_EXTRACTABLE false, identified by CKA_ID and CKA_LABEL equal to the
// caller's id. Encrypt uses CKM_AES_GCM with a fresh 96-bit IV from
// crypto/rand for every call (read back from the mechanism parameters, since
// some HSMs substitute their own) and a 128-bit tag; the result is the raw
// parts (hsm.Sealed: IV and ciphertext || tag), and Decrypt refuses parts of
// any other size with hsm.ErrDecrypt before a session is taken.
// WrapKey/UnwrapKey are AES-GCM under the root key with hsm.WrapAAD and
// return/take the framed hsm.Sealed blob, so they work on tokens that cannot
// wrap with GCM (SoftHSM).
//
// Faults: device errors, lost sessions, a finalized module or a lost login
// flip the Backend to unavailable. Calls then fail at once with an error
// matching hsm.ErrUnavailable while one background goroutine re-initialises
// the module (C_Finalize + C_Initialize), logs in again and re-finds the
// root key, with exponential backoff. Object handles are cached per id and
// the cache is dropped on every re-initialise. Health reports the state.
//
// Decrypt never reports a device fault for bad input: SoftHSM answers a GCM
// tag mismatch with CKR_GENERAL_ERROR, so every failure of C_Decrypt other
// than a lost session or device is hsm.ErrDecrypt. Likewise, creating,
// destroying and listing keys run one at a time per Backend and never beside
// a key in use, because SoftHSM reports such races with errors that would
// otherwise look like faults.
//
// A PKCS#11 module is process-wide state: every Backend on the same module
// path shares one initialised module, and a re-initialise by one Backend
// makes the others reopen their sessions too.
//
// Deployments sharing a token: BindDeployment (called by Open when
// Config.Deployment is set, and by kmsd once its database named the
// deployment) records the owner of the root key in a CKO_DATA object
// (CKA_APPLICATION "kmsgo", CKA_LABEL "kmsgo-owner:<root key id>") and
// refuses a root key owned by another deployment with hsm.ErrForeignRootKey
// unless told otherwise.
//
// For tests, package softhsmtest creates throwaway SoftHSM2 tokens.
package p11
