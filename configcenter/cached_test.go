package configcenter_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/kmsgo/kmsgo/configcenter"
	"github.com/kmsgo/kmsgo/starter/kmsclient"
)

type countingRT struct {
	rt http.RoundTripper
	n  atomic.Int64
}

func (c *countingRT) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.rt.RoundTrip(r)
}

// Start-up decrypts 250 values in batches of at most MaxBatchItems; with a
// shared *kmsclient.Cached, a second instance starting (a restart, or
// several Configs in one process) makes no kmsd call at all.
func TestStartupBatchesAndCachedDecrypter(t *testing.T) {
	k := startKMS(t)
	var doc strings.Builder
	for i := range 250 {
		fmt.Fprintf(&doc, "k%03d: %s\n", i, k.enc(t, fmt.Sprintf("v%d", i), nil))
	}
	path := tempFile(t, "big.yaml", doc.String())
	rt := &countingRT{rt: http.DefaultTransport.(*http.Transport).Clone()}
	hc := &http.Client{Transport: rt}
	defer hc.CloseIdleConnections()
	client, err := kmsclient.New(kmsclient.Config{Endpoint: k.srv.URL, AccessKeyID: k.srv.AccessKeyID,
		SecretAccessKey: k.srv.SecretAccessKey, Region: k.srv.Region, HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	cached, err := kmsclient.NewCached(client, kmsclient.CacheConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []int64{3, 0} { // ceil(250/100) requests, then none
		before := rt.n.Load()
		c, err := configcenter.New(context.Background(), configcenter.Options{
			Sources: []configcenter.Source{fileSource(path)}, Decrypter: cached, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Snapshot().String("k249", ""); got != "v249" {
			t.Fatalf("k249 = %q", got)
		}
		c.Close()
		if got := rt.n.Load() - before; got != want {
			t.Fatalf("start %d: %d kmsd requests, want %d", i+1, got, want)
		}
	}
}
