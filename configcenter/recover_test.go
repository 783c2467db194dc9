package configcenter_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/kmsgo/kmsgo/configcenter"
	"github.com/kmsgo/kmsgo/starter/kmsclient"
)

// kmsd goes away under a running app: the app keeps its snapshot, reports
// the rejected change, and applies it by itself when kmsd returns.
// Start-up while kmsd is away fails clearly.
func TestKMSUnavailableThenRecovers(t *testing.T) {
	k := startKMS(t)
	proxy := newTCPProxy(t, k.srv.URL)
	hc := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	defer hc.CloseIdleConnections()
	client, err := kmsclient.New(kmsclient.Config{Endpoint: proxy.URL(), AccessKeyID: k.srv.AccessKeyID,
		SecretAccessKey: k.srv.SecretAccessKey, Region: k.srv.Region, HTTPClient: hc, MaxRetries: -1, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	v1, v2 := k.enc(t, "value-1", nil), k.enc(t, "value-2", nil)
	path := tempFile(t, "app.yaml", "secret: "+v1+"\n")
	errs := make(chan error, 100)
	c, err := configcenter.New(context.Background(), configcenter.Options{
		Sources: []configcenter.Source{fileSource(path)}, Decrypter: client, Logger: quiet,
		RetryInterval: 50 * time.Millisecond, OnError: func(err error) { errs <- err }})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	proxy.down()
	hc.CloseIdleConnections()
	writeFile(t, path, "secret: "+v2+"\n")
	select {
	case err := <-errs:
		if !errors.Is(err, configcenter.ErrKMSUnavailable) {
			t.Fatalf("OnError got %v, want ErrKMSUnavailable", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no error while kmsd is down")
	}
	if got := c.Snapshot().String("secret", ""); got != "value-1" {
		t.Fatalf("snapshot while kmsd is down: %q", got)
	}
	// A second app starting now fails clearly.
	_, err = configcenter.New(context.Background(), configcenter.Options{
		Sources: []configcenter.Source{fileSource(path)}, Decrypter: client, Logger: quiet})
	if !errors.Is(err, configcenter.ErrKMSUnavailable) || !strings.Contains(err.Error(), "start-up") {
		t.Fatalf("start-up with kmsd down: %v", err)
	}

	proxy.up()
	eventually(t, "recovery", func() bool { return c.Snapshot().String("secret", "") == "value-2" })
	if st := c.Stats(); st.Reloads != 1 || st.ReloadErrors < 1 {
		t.Fatalf("stats %+v", st)
	}
}

// Close stops every goroutine the Config started and closes its sources.
func TestCloseStopsGoroutines(t *testing.T) {
	k := startKMS(t)
	path := tempFile(t, "app.yaml", "secret: "+k.enc(t, "x", nil)+"\n")
	k.hc.CloseIdleConnections()
	opts := []goleak.Option{goleak.IgnoreCurrent()}
	c, err := configcenter.New(context.Background(), configcenter.Options{
		Sources: []configcenter.Source{fileSource(path), fileSource(path)}, Decrypter: k.client, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	c.OnChange(func(_, _ *configcenter.Snapshot) {})
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil { // idempotent
		t.Fatal(err)
	}
	k.hc.CloseIdleConnections()
	goleak.VerifyNone(t, opts...)
	if c.Snapshot().String("secret", "") != "x" {
		t.Fatal("snapshot not readable after Close")
	}
}
