package starter_test

import (
	"context"
	"fmt"
	"log"

	"github.com/kmsgo/kmsgo/starter"
)

// LoadSettings reads the YAML file's content and the KMSGO_* variables
// (here given explicitly; starter.File uses os.Environ()). The secret comes
// from the environment only.
func ExampleLoadSettings() {
	yml := []byte(`
kms:
  endpoint: http://127.0.0.1:8400
config:
  sources: [etcd]
  etcd: {endpoints: [127.0.0.1:2379], keys: [/orders/app.yaml]}
database:
  driver: postgres
  dsn_path: db.dsn
  orm: {key_id: alias/orders}
`)
	s, err := starter.LoadSettings("kmsgo.yaml", yml, []string{
		"KMSGO_KMS_ACCESS_KEY_ID=AKEXAMPLE",
		"KMSGO_KMS_SECRET_ACCESS_KEY=example-secret",
		"KMSGO_DATABASE_MAX_OPEN_CONNS=20",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(s.KMS.Endpoint, s.Config.Sources, s.Database.Driver, s.Database.MaxOpenConns, s.Database.DrainTimeout)

	_, err = starter.LoadSettings("kmsgo.yaml", []byte("kms: {endpoint: http://k, secret_access_key: x}\n"), nil)
	fmt.Println(err)
	// Output:
	// http://127.0.0.1:8400 [etcd] postgres 20 30s
	// starter: credentials: kmsgo.yaml: kms.secret_access_key must not be in a config file; set KMSGO_KMS_SECRET_ACCESS_KEY or kms.credentials_file (a 0600 file)
}

// The renewal block of the settings (database.renewal), here re-encrypting
// every value monthly; KMSGO_* variables override it like any other key.
func ExampleLoadSettings_renewal() {
	yml := []byte(`
kms: {endpoint: http://127.0.0.1:8400}
database:
  driver: postgres
  dsn: postgres://app@db/app
  orm: {key_id: alias/orders}
  renewal:
    schedule: "0 3 1 * *"
    mode: reencrypt
    tables: [users]
`)
	s, err := starter.LoadSettings("kmsgo.yaml", yml, []string{
		"KMSGO_KMS_ACCESS_KEY_ID=AKEXAMPLE", "KMSGO_KMS_SECRET_ACCESS_KEY=example-secret",
		"KMSGO_DATABASE_RENEWAL_BATCH_SIZE=1000",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	r := s.Database.Renewal
	fmt.Println(r.Schedule, r.Mode, r.Tables, r.BatchSize)
	// Output:
	// 0 3 1 * * reencrypt [users] 1000
}

type User struct {
	ID    uint
	Email string `gorm:"serializer:kms;size:255"`
}

// WithRenewalModels gives the renewal job the models it re-encrypts;
// RunRenewal runs it now (for example from an admin endpoint).
func ExampleWithRenewalModels() {
	ctx := context.Background()
	app, err := starter.Start(ctx, starter.File("kmsgo.yaml"), starter.WithRenewalModels(&User{}))
	if err != nil {
		log.Fatal(err)
	}
	defer app.Close()
	rep, err := app.RunRenewal(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("keys re-wrapped: %d, values re-encrypted: %d, failed: %d, kmsd calls: %d\n",
		rep.Keys.Renewed, rep.Values.Renewed, rep.Values.Failed, rep.KMSCalls)
}
