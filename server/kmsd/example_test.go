package kmsd_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"

	"github.com/kmsgo/kmsgo/server/config"
	"github.com/kmsgo/kmsgo/server/kmsd"
)

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
	app, err := kmsd.Open(context.Background(), c, kmsd.Deps{}, nil)
	if err != nil {
		panic(err)
	}
	defer app.Close()
	path, err := app.EnsureBootstrapAdmin(context.Background())
	if err != nil {
		panic(err)
	}
	srv := httptest.NewServer(app.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/readyz")
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	fmt.Println(filepath.Base(path), resp.StatusCode)
	// Output: admin-credentials.json 200
}
