// Package kmsd runs a kmsd in-process (as etcd's embed package runs an
// etcd server): Open assembles it from a config.Config — database, HSM
// backend, schema migrations, the key service, authentication, the audit
// log, the HTTP handler and the scheduled key maintenance (package jobs:
// started by Open, stopped first by Close). App.Handler() serves the /v1
// API and the AWS KMS JSON protocol (POST /), Deps.Extra mounts more
// routes next to them; EnsureBootstrapAdmin creates the first admin access
// key.
//
// cmd/kmsd and server/kmstest both use it, so tests exercise exactly the
// wiring that production runs. The packages it wires are internal
// (server/internal/...) and App exposes only public types (its key and
// authentication services are reachable from tests under server/ through
// server/internal/kmsdinternal); the wire types are in starter/kmsapi.
package kmsd
