package file_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/kmsgo/kmsgo/configcenter"
	"github.com/kmsgo/kmsgo/configcenter/file"
)

// A service reads its config from a local YAML file and follows changes.
// With ENC(...) values in the file, set Options.Decrypter to a kmsclient.
func Example() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "app.yaml")
	_ = os.WriteFile(path, []byte("server:\n  port: 8080\n  timeout: 5s\n"), 0o600)

	cfg, err := configcenter.New(context.Background(), configcenter.Options{
		Sources: []configcenter.Source{file.New(path, file.Options{PollInterval: 10 * time.Millisecond})},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cfg.Close()

	var server struct {
		Port    int           `koanf:"port"`
		Timeout time.Duration `koanf:"timeout"`
	}
	_ = cfg.Snapshot().BindPath("server", &server)
	fmt.Println(server.Port, server.Timeout)

	changed := make(chan int)
	configcenter.WatchAs(cfg, "server.port", func(old, new int) { changed <- new })
	_ = os.WriteFile(path+".tmp", []byte("server:\n  port: 9090\n  timeout: 5s\n"), 0o600)
	_ = os.Rename(path+".tmp", path)
	fmt.Println(<-changed, cfg.Snapshot().Int("server.port", 0))
	// Output:
	// 8080 5s
	// 9090 9090
}
