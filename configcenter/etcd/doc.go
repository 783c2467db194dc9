// Package etcd is a configcenter.Source on etcd v3
// (go.etcd.io/etcd/client/v3), in one of two layouts:
//
//   - Key: one key holds a whole document (YAML, JSON, TOML or
//     properties, from the key's suffix or Options.Format);
//   - Prefix: every key under a prefix is one config path, its value the
//     raw string ("/app/db/password" under "/app/" is "db.password").
//
// Load reads the state with one Get and remembers its revision; Watch then
// watches from the next revision with clientv3.WithRequireLeader and
// delivers one complete State per etcd revision, in order. Events at or
// below the last delivered revision are dropped, so nothing is applied
// twice. When the watch breaks (ErrCompacted because the history it needs
// is gone, a lost leader, a closed stream) the source reads the whole
// state again with one Get, delivers it if it differs, and watches from
// that revision + 1, so no change is missed either.
//
// In the Key layout a deleted key is reported to onError and the last
// state stays; Load of a missing key fails with ErrKeyNotFound.
//
// Renewer (opt-in) re-encrypts ENC values stored under a key or prefix
// under their keys' primary versions and writes them back with a
// transaction on the key's ModRevision (see configcenter.RenewText).
package etcd
