package etcd_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/kmsgo/kmsgo/configcenter"
	"github.com/kmsgo/kmsgo/configcenter/etcd"
	"github.com/kmsgo/kmsgo/configcenter/etcd/etcdtest"
)

// A service keeps its config in etcd, one key per config path under a
// prefix, and follows changes. With ENC(...) values, set
// Options.Decrypter to a kmsclient.
func Example() {
	ctx := context.Background()
	server := etcdtest.Start(&testing.T{}) // a real in-process etcd; in production: your cluster
	cli := server.Client(&testing.T{})
	_, _ = cli.Put(ctx, "/orders/http/port", "8080")
	_, _ = cli.Put(ctx, "/orders/feature/new-checkout", "false")

	src, _ := etcd.New(cli, etcd.Options{Prefix: "/orders/"})
	cfg, err := configcenter.New(ctx, configcenter.Options{Sources: []configcenter.Source{src}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cfg.Close()
	fmt.Println(cfg.Snapshot().Int("http.port", 80), cfg.Snapshot().Bool("feature.new-checkout", false))

	changed := make(chan bool)
	configcenter.WatchAs(cfg, "feature.new-checkout", func(old, new bool) { changed <- new })
	_, _ = cli.Put(ctx, "/orders/feature/new-checkout", "true")
	fmt.Println(<-changed)
	// Output:
	// 8080 false
	// true
}
