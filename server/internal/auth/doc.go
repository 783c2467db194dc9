// Package auth authenticates kmsd API requests and manages the access keys
// and policies that requests are authorised with.
//
// # Access keys
//
// An access key is an id ("AKKMS" followed by 16 upper-case base32
// characters) and a 40-character secret from crypto/rand, issued by an
// admin. The secret is stored only wrapped under the HSM root key
// (hsm.Backend.WrapKey) with AAD that binds it to its access key id, never in
// plaintext. A key has a description, a status (Enabled or Disabled), a
// creation date and a policy document. Service manages keys (create,
// describe, list, update policy, enable, disable, rotate secret, delete);
// Migrations returns the schema steps for its tables (kms_access_keys,
// kms_auth_nonces, kms_auth_bootstrap).
//
// # Request authentication
//
// Service.Authenticate verifies AWS Signature Version 4 (service "kms",
// region from Config, default "local") as described in
// server/internal/httpapi/API.md. It does not implement the signing algorithm
// itself: it parses the Authorization header, rebuilds a request carrying
// only the headers listed in SignedHeaders, signs it with aws-sdk-go-v2's
// aws/signer/v4 using the request's X-Amz-Date, the SHA-256 of the received
// body and the credential scope, and compares the two Authorization values in
// constant time. The body hash is always computed from the received body; an
// X-Amz-Content-Sha256 header, when present, must equal it.
//
// Unknown access keys are verified against a random dummy secret and, like
// existing keys, cached for CacheTTL (up to a bound), so unknown key,
// disabled key and bad signature cost similar work and return the same
// ErrUnauthenticated. (The first request for an existing key also pays an
// HSM unwrap; an unknown id does not, to avoid giving attackers a way to load
// the HSM.) A key created on another replica is therefore refused by a
// replica that was probed with its id for at most CacheTTL.
//
// Requests must carry a signed X-Amz-Date header (the Date header is not
// accepted) and sign host.
//
// Unwrapped secrets are cached in memory for Config.CacheTTL (default 5 s)
// so that requests do not each need an HSM unwrap. A cached secret is held as
// a Go string, because the SDK signer takes one, and so cannot be zeroed; the
// unwrapped buffer itself is zeroed at once. Changes made through this
// Service (disable, delete, rotate, policy update) take effect at once on
// this replica; on other replicas they take effect within CacheTTL.
//
// Limitations of the verifier: headers that the AWS SDK never signs
// (authorization, user-agent, x-amzn-trace-id, expect, transfer-encoding)
// must not appear in SignedHeaders; paths are canonicalised as AWS services
// other than S3 do (each segment URI-encoded twice, no dot-segment
// normalisation); session tokens and presigned (query-string) requests are
// not supported. A query key may appear only once: SigV4 sorts the values of
// a repeated key, so their order would not be signed. Query parameters in a
// different order verify (SigV4 sorts them), as do header values that differ
// only in spacing; a path whose percent-encoding differs from the signed one
// does not. The pure canonicalization (escaping, header values, query, Host,
// key derivation, string to sign) is starter/sigv4's, shared with the
// client's signer; the checks above are this package's.
//
// # Replay protection
//
// A client may send a signed X-Kms-Nonce header (16-64 characters from
// [A-Za-z0-9._~+/=-]); Config.RequireNonce makes it mandatory. After the
// signature verifies, the pair (access key id, nonce) is inserted into the
// shared database table kms_auth_nonces; a duplicate means a replay and
// yields ErrUnauthenticated on every replica. Rows expire one clock window
// (plus a minute of slack) after the request time and are purged
// opportunistically, at most once a minute per Service, or by
// PurgeExpiredNonces.
//
// # Policies
//
// Policy is the JSON document of API.md: deny by default, statements with
// effect Allow or Deny, action and resource patterns with '*' wildcards,
// an explicit Deny wins. AdminPolicy allows everything.
//
// # Bootstrap
//
// EnsureBootstrapAdmin creates a first admin access key when the database
// has none and writes its credentials, once, to a new 0600 JSON file
// (BootstrapCredentials: access_key_id, secret_access_key, region). Replicas
// starting together on an empty database create exactly one key: a marker
// row in kms_auth_bootstrap is advanced with compare-and-swap.
package auth
