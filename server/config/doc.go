// Package config loads kmsd's configuration (a YAML file plus KMSD_*
// environment overrides) and assembles a running kmsd from it: database,
// HSM backend, schema migrations, the KMS service, authentication, the
// audit log, the HTTP handler and the scheduled key maintenance (package
// jobs: started by Open, stopped first by Close). cmd/kmsd and
// server/kmstest both use it, so tests exercise exactly the wiring that
// production runs.
package config
