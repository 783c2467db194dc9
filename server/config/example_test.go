package config_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"

	"github.com/kmsgo/kmsgo/server/config"
)

// Load merges the YAML file (none here) with KMSD_* environment overrides.
func ExampleLoad() {
	env := map[string]string{"KMSD_LISTEN": "127.0.0.1:9400", "KMSD_KMS_METADATA_TTL": "1s"}
	c, err := config.Load("", func(k string) string { return env[k] })
	if err != nil {
		panic(err)
	}
	fmt.Println(c.Listen, c.HSM.Backend, c.Database.Driver, c.KMS.MetadataTTL)
	// Output: 127.0.0.1:9400 dev sqlite 1s
}

// Open assembles a complete kmsd (here: SQLite and the dev key backend in a
// temporary data directory) whose Handler serves the HTTP API.
func ExampleOpen() {
	dir, err := os.MkdirTemp("", "kmsd-example-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	c := config.Defaults()
	c.DataDir = dir
	app, err := config.Open(context.Background(), c, config.Deps{}, nil)
	if err != nil {
		panic(err)
	}
	defer app.Close()
	path, err := app.EnsureBootstrapAdmin(context.Background())
	if err != nil {
		panic(err)
	}
	srv := httptest.NewServer(app.Handler)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/readyz")
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	fmt.Println(filepath.Base(path), resp.StatusCode)
	// Output: admin-credentials.json 200
}
