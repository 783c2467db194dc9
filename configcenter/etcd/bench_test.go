package etcd_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kmsgo/kmsgo/configcenter"
	"github.com/kmsgo/kmsgo/configcenter/etcd"
	"github.com/kmsgo/kmsgo/configcenter/etcd/etcdtest"
	"github.com/kmsgo/kmsgo/server/kmstest"
	"github.com/kmsgo/kmsgo/starter/kmsclient"
)

// countingTransport counts the HTTP requests that reach kmsd.
type countingTransport struct {
	rt http.RoundTripper
	n  atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.rt.RoundTrip(r)
}

// benchKMS is a kmsd on loopback with a client whose requests are counted.
func benchKMS(b *testing.B) (*kms, *countingTransport) {
	srv := kmstest.Start(b)
	ct := &countingTransport{rt: http.DefaultTransport.(*http.Transport).Clone()}
	hc := &http.Client{Transport: ct}
	b.Cleanup(hc.CloseIdleConnections)
	c, err := kmsclient.New(kmsclient.Config{Endpoint: srv.URL, AccessKeyID: srv.AccessKeyID,
		SecretAccessKey: srv.SecretAccessKey, Region: srv.Region, HTTPClient: hc})
	if err != nil {
		b.Fatal(err)
	}
	md, err := c.CreateKey(context.Background(), kmsclient.CreateKeyInput{})
	if err != nil {
		b.Fatal(err)
	}
	return &kms{client: c, keyID: md.KeyID, hc: hc}, ct
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p)
	return sorted[i]
}

// BenchmarkChangeToCallback measures the time from an etcd Put to the
// configcenter callback with the new value, for one ENC value (decrypted
// by kmsd on loopback on every change) and, as the baseline, one plain
// value. Each op is one change; run with -benchtime=1000x for the p50/p99
// over 1,000 changes.
func BenchmarkChangeToCallback(b *testing.B) {
	k, _ := benchKMS(b)
	srv := etcdtest.Start(b)
	cli := srv.Client(b)
	ctx := context.Background()
	values := map[string][2]string{
		"plain": {"value-a", "value-b"},
		"enc":   {k.enc(b, "secret-a"), k.enc(b, "secret-b")},
	}
	for _, name := range []string{"plain", "enc"} {
		b.Run(name, func(b *testing.B) {
			key := "/bench/" + name + "/secret"
			vals := values[name]
			if _, err := cli.Put(ctx, key, vals[0]); err != nil {
				b.Fatal(err)
			}
			src, err := etcd.New(cli, etcd.Options{Prefix: "/bench/" + name + "/"})
			if err != nil {
				b.Fatal(err)
			}
			c, err := configcenter.New(ctx, configcenter.Options{Sources: []configcenter.Source{src}, Decrypter: k.client, Logger: quiet})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			got := make(chan string, 1)
			configcenter.WatchAs(c, "secret", func(_, new string) { got <- new })
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				v := vals[(i+1)%2]
				start := time.Now()
				if _, err := cli.Put(ctx, key, v); err != nil {
					b.Fatal(err)
				}
				select {
				case <-got:
				case <-time.After(time.Minute):
					b.Fatal("no callback")
				}
				lat = append(lat, time.Since(start))
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(percentile(lat, 0.50).Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(percentile(lat, 0.99).Microseconds())/1000, "p99-ms")
		})
	}
}

// BenchmarkStartup1000 measures configcenter.New on one etcd key holding a
// YAML document of 1,000 values: all ENC (distinct ciphertexts) and, as
// the baseline, all plain. kmsd-calls/op counts the HTTP requests that
// reached kmsd.
func BenchmarkStartup1000(b *testing.B) {
	k, ct := benchKMS(b)
	srv := etcdtest.Start(b)
	cli := srv.Client(b)
	ctx := context.Background()
	for _, name := range []string{"plain", "enc"} {
		var doc strings.Builder
		for i := range 1000 {
			v := fmt.Sprintf("value-%d", i)
			if name == "enc" {
				v = k.enc(b, v)
			}
			fmt.Fprintf(&doc, "k%04d: %s\n", i, v)
		}
		key := "/startup/" + name + ".yaml"
		if _, err := cli.Put(ctx, key, doc.String()); err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			before := ct.n.Load()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				src, err := etcd.New(cli, etcd.Options{Key: key})
				if err != nil {
					b.Fatal(err)
				}
				c, err := configcenter.New(ctx, configcenter.Options{Sources: []configcenter.Source{src}, Decrypter: k.client, Logger: quiet})
				if err != nil {
					b.Fatal(err)
				}
				if c.Snapshot().String("k0999", "") != "value-999" {
					b.Fatal("not decrypted")
				}
				c.Close()
			}
			b.StopTimer()
			b.ReportMetric(float64(ct.n.Load()-before)/float64(b.N), "kmsd-calls/op")
		})
	}
}
