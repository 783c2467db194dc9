// Package internal groups the packages only kmsd uses: the key service
// (kms), its storage (store, migrate), authentication (auth), the
// ciphertext format (ciphertext) and the HTTP APIs (httpapi, awsapi).
// Programs embed kmsd through server/kmsd and test against it with
// server/kmstest; the wire types are in starter/kmsapi.
package internal
