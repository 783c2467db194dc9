package etcd_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/kmsgo/kmsgo/configcenter"
	"github.com/kmsgo/kmsgo/configcenter/etcd"
	"github.com/kmsgo/kmsgo/configcenter/etcd/etcdtest"
)

// BenchmarkRenew1000 renews one etcd key holding a YAML document of 1,000
// ENC values, all under the old key version (the document is put back
// before each op, outside the timer). Baseline in the same run: the
// start-up decryption of the same document by configcenter.New.
// kmsd-calls/op counts HTTP requests that reached kmsd.
func BenchmarkRenew1000(b *testing.B) {
	k, ct := benchKMS(b)
	srv := etcdtest.Start(b)
	cli := srv.Client(b)
	ctx := context.Background()
	var doc strings.Builder
	for i := range 1000 {
		fmt.Fprintf(&doc, "k%04d: %s # value %d\n", i, k.enc(b, fmt.Sprintf("value-%d", i)), i)
	}
	if _, err := k.client.RotateKey(ctx, k.keyID); err != nil {
		b.Fatal(err)
	}
	const key = "/bench/renew.yaml"
	put := func() {
		if _, err := cli.Put(ctx, key, doc.String()); err != nil {
			b.Fatal(err)
		}
	}
	put()
	b.Run("startup-decrypt-baseline", func(b *testing.B) {
		before := ct.n.Load()
		for i := 0; i < b.N; i++ {
			src, _ := etcd.New(cli, etcd.Options{Key: key})
			c, err := configcenter.New(ctx, configcenter.Options{Sources: []configcenter.Source{src}, Decrypter: k.client, Logger: quiet})
			if err != nil {
				b.Fatal(err)
			}
			c.Close()
		}
		b.ReportMetric(float64(ct.n.Load()-before)/float64(b.N), "kmsd-calls/op")
	})
	b.Run("renew", func(b *testing.B) {
		r, _ := etcd.NewRenewer(cli, etcd.RenewerOptions{Key: key})
		var calls int64
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			put()
			before := ct.n.Load()
			b.StartTimer()
			rep, err := r.Renew(ctx, configcenter.RenewOptions{Client: k.client})
			if err != nil || rep.Renewed != 1000 || rep.Written != 1 {
				b.Fatalf("%+v %v", rep, err)
			}
			calls += ct.n.Load() - before
		}
		b.ReportMetric(float64(calls)/float64(b.N), "kmsd-calls/op")
	})
}
