// Package starter wires a Go service to kmsgo from one YAML file: a KMS
// client, a live decrypted configuration from the config center (Nacos,
// etcd or a file) and a GORM database whose tagged fields are encrypted by
// ormplugin, with no crypto code in the service.
//
//	app, err := starter.Start(ctx, starter.File("kmsgo.yaml")) // KMSGO_* variables override
//	if err != nil { log.Fatal(err) }
//	defer app.Close()
//	db  := app.DB()     // *gorm.DB with ormplugin registered
//	cfg := app.Config() // *configcenter.Config, hot-reloaded
//	kms := app.KMS()    // *kmsclient.Client
//
// kmsgo.example.yaml documents every key. KMSGO_ + the YAML path in upper
// case overrides a key (KMSGO_DATABASE_DSN_PATH).
//
// # Linking
//
// The starter links only what a service imports. Config sources other
// than "file" and database drivers register themselves, like database/sql
// drivers, from their own packages:
//
//	import (
//		_ "github.com/kmsgo/kmsgo/starter/etcd"     // or starter/nacos
//		_ "github.com/kmsgo/kmsgo/starter/postgres" // or starter/mysql, starter/sqlite
//	)
//
// so a service on etcd does not link the Nacos SDK, one on PostgreSQL
// does not link cgo SQLite. A configuration naming a source or driver that
// is not linked fails with ErrNotLinked and the import to add. Package
// starter itself never links the server side (gin, PKCS#11).
//
// # Credentials
//
// The KMS credentials and the config-center credentials come from
// KMSGO_* variables or from files with mode 0600 or 0400, never from the
// YAML file and never from the config center (which cannot be read before
// they exist). Everything else may come from the config center, including
// the database DSN (database.dsn_path) and password
// (database.password_path) as ENC(...) values.
//
// # Start and Close
//
// Start runs, in order: the KMS client (kmsd must answer /readyz), the
// config sources and their first snapshot (every ENC value decrypted), the
// database (opened with the decrypted DSN and pinged, ormplugin
// registered), then the watchers. A failure stops start-up with a
// *StartError naming the component and the config path, after closing what
// was already opened. Close stops everything in reverse order and is safe
// to call twice.
//
// # Database credential rotation
//
// When the DSN or password changes in the config center, the starter opens
// a new pool, pings it, and swaps it in for new calls; the old pool is
// closed once the work running on it is done (bounded by
// database.drain_timeout). A new value that does not open or ping keeps
// the old pool; the error goes to Health, the log, the
// db_rotation_errors_total metric and WithOnError.
//
// App.DB returns the same *gorm.DB for the App's whole life: its
// connection pool is a switch in front of the current *sql.DB. So callers
// may keep the *gorm.DB (in a repository struct, say) and keep working
// across rotations: a statement or transaction started before a rotation
// finishes on the old pool, one started after it runs on the new pool.
// What callers must not keep is the *sql.DB returned by App.DB().DB(): it
// is the pool current at that moment and is closed after the next
// rotation. Pool limits come from the settings (database.max_open_conns,
// ...) and apply to every new pool; GORM's PrepareStmt mode is not used
// (prepared statements belong to one pool).
//
// # Database renewal
//
// database.renewal schedules ormplugin's renewal after master key
// rotations (Plugin.Renew): re-wrap the data keys not under the primary
// version (mode rewrap, no row rewritten), or also re-encrypt the values of
// the models given to WithRenewalModels (mode reencrypt; tables restricts
// them by table name). The job runs on a jobs.Scheduler whose jobs.Store
// is the kmsgo_jobs table of the App's database: every instance schedules
// it, one instance runs each period (compare-and-swap claim), renewing its
// lease while it runs; an instance that dies frees the job within
// lease_ttl and the next run resumes from the cursor saved after every
// batch. App.RunRenewal runs it now under the same lease, App.RenewalState
// reports the shared state. Without a schedule nothing runs by itself.
//
// # Health
//
// App.Health reports kmsd's readiness, the config center (last change,
// last rejected change), each source (last change, revision, last error)
// and a database ping; App.HealthHandler serves it as JSON for a readiness
// probe. Only kmsd and the database decide Health.OK: while a config
// source is down the App keeps its last good configuration.
package starter
