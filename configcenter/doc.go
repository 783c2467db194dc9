// Package configcenter reads service configuration from one or more
// sources (a file, etcd, Nacos: each in its own package), decrypts the
// ENC(...) values in it through kmsd, and keeps an immutable, decrypted
// Snapshot up to date as the sources change.
//
// A Config is built with New from Options: the Sources, merged in order
// (a later source wins), and a Decrypter (a *kmsclient.Client or
// *kmsclient.Cached). Documents are parsed with koanf (YAML, JSON, TOML)
// or with the package's own Java-style properties parser; nested keys are
// addressed by dotted path ("db.password").
//
// A string value that is exactly ENC(<base64 ciphertext>) (the marker is
// configurable) is decrypted; markers inside longer strings are left alone
// unless Options.EmbeddedMarkers is set. Start-up decrypts every value in
// batches through /v1/decrypt/batch; plaintexts are cached by ciphertext
// so that a change decrypts only the values that changed.
//
// Failing closed: New fails when a value cannot be decrypted, with an error
// that names the config path and the reason but never the value. On a
// later change that cannot be applied, the last good Snapshot stays
// active, the error goes to Options.OnError, to a log line and to the
// ReloadErrors counter of Stats, and the next good change applies. A
// change rejected because kmsd was unreachable is retried in the
// background until it applies or a newer change replaces it.
//
// Readers call the typed getters of the current Snapshot (String, Int,
// Bool, Duration, Strings, ...) with defaults, or Bind the configuration
// into a tagged struct (koanf/mapstructure tags "koanf"). OnChange, Watch
// and WatchAs call back with the old and new values after each change.
// Close stops every goroutine the Config started and closes its sources.
//
// Decrypted values never reach logs or disk through this package: the
// String, GoString and fmt output of a Snapshot and of a Config are
// redacted, and errors name paths, never values.
//
// Renewal (renew.go) keeps stored ciphertext on the newest key version:
// RenewText re-encrypts, through kmsd's ReEncrypt, each ENC value of a
// document whose key version is not its key's primary version, changing no
// other byte; etcd.Renewer and nacos.Renewer write the result back with
// compare-and-swap, RenewJob schedules them as a jobs.Job.
package configcenter
