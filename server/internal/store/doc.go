// Package store is the GORM persistence layer of the kmsd key service: the
// models for master keys, key versions, aliases, tags and import tokens, their
// explicit versioned migrations (Migrations) and the queries the service
// needs, including the compare-and-swap updates that let several kmsd
// replicas share one database.
//
// Every table is prefixed "kms_". Stored enum values (key states, specs,
// protection levels, origins, version states) are part of the on-disk format
// and must never change; a test freezes them.
//
// The store never sees plaintext key material: SOFTWARE key versions are
// stored wrapped by the HSM root key, HSM key versions only by object id.
package store
