package etcd_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/goleak"

	"github.com/kmsgo/kmsgo/configcenter"
	"github.com/kmsgo/kmsgo/configcenter/etcd"
	"github.com/kmsgo/kmsgo/configcenter/etcd/etcdtest"
	"github.com/kmsgo/kmsgo/server/kmstest"
	"github.com/kmsgo/kmsgo/starter/kmsclient"
)

var quiet = slog.New(slog.DiscardHandler)

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// kms is a real in-process kmsd, a client and a key.
type kms struct {
	client *kmsclient.Client
	keyID  string
	hc     *http.Client
}

func startKMS(t testing.TB) *kms {
	t.Helper()
	srv := kmstest.Start(t)
	hc := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	t.Cleanup(hc.CloseIdleConnections)
	c, err := kmsclient.New(kmsclient.Config{Endpoint: srv.URL, AccessKeyID: srv.AccessKeyID,
		SecretAccessKey: srv.SecretAccessKey, Region: srv.Region, HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	md, err := c.CreateKey(context.Background(), kmsclient.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	return &kms{client: c, keyID: md.KeyID, hc: hc}
}

func (k *kms) enc(t testing.TB, plaintext string) string {
	t.Helper()
	out, err := k.client.Encrypt(context.Background(), k.keyID, []byte(plaintext), nil)
	if err != nil {
		t.Fatal(err)
	}
	return "ENC(" + base64.StdEncoding.EncodeToString(out.CiphertextBlob) + ")"
}

// recorder collects what a source's Watch delivers.
type recorder struct {
	mu     sync.Mutex
	states []configcenter.State
	errs   []error
}

func (r *recorder) onChange(st configcenter.State) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.states = append(r.states, st)
}

func (r *recorder) onError(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, err)
}

func (r *recorder) get() ([]configcenter.State, []error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.states), slices.Clone(r.errs)
}

func (r *recorder) revisions(t testing.TB) []int64 {
	states, _ := r.get()
	out := make([]int64, len(states))
	for i, st := range states {
		n, err := strconv.ParseInt(st.Revision, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = n
	}
	return out
}

func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// startWatch runs src.Watch in the background until the test ends.
func startWatch(t testing.TB, src *etcd.Source, r *recorder) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = src.Watch(ctx, r.onChange, r.onError)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

func TestOptions(t *testing.T) {
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	tests := []struct {
		name string
		cli  *clientv3.Client
		opts etcd.Options
	}{
		{"no client", nil, etcd.Options{Key: "/a.yaml"}},
		{"neither", cli, etcd.Options{}},
		{"both", cli, etcd.Options{Key: "/a.yaml", Prefix: "/a/"}},
		{"key without format", cli, etcd.Options{Key: "/app/config"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := etcd.New(tc.cli, tc.opts); !errors.Is(err, etcd.ErrBadOptions) {
				t.Fatalf("err = %v", err)
			}
		})
	}
	src, err := etcd.New(cli, etcd.Options{Key: "/missing.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.Load(ctxT(t)); !errors.Is(err, etcd.ErrKeyNotFound) {
		t.Fatalf("Load of a missing key: %v", err)
	}
	if _, err := etcd.New(cli, etcd.Options{Key: "/app/config", Format: configcenter.FormatProperties}); err != nil {
		t.Fatal(err)
	}
}

// An ENC value put with the etcd client reaches the callbacks decrypted,
// in both layouts, and the refresh goes through the same decryption.
func TestENCValueDecryptedOnChange(t *testing.T) {
	k := startKMS(t)
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	ctx := ctxT(t)
	if _, err := cli.Put(ctx, "/svc/app.yaml", "db:\n  user: app\n  password: "+k.enc(t, "first-secret")+"\n"); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx, "/svc/kv/api/token", k.enc(t, "token-1")); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx, "/svc/kv/api/timeout", "3s"); err != nil {
		t.Fatal(err)
	}
	doc, err := etcd.New(cli, etcd.Options{Key: "/svc/app.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	kv, err := etcd.New(cli, etcd.Options{Prefix: "/svc/kv/"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := configcenter.New(ctx, configcenter.Options{Sources: []configcenter.Source{doc, kv}, Decrypter: k.client, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s := c.Snapshot()
	if s.String("db.password", "") != "first-secret" || s.String("api.token", "") != "token-1" || s.Duration("api.timeout", 0) != 3*time.Second {
		t.Fatalf("start-up values: %q %q", s.String("db.password", ""), s.String("api.token", ""))
	}
	type change struct{ old, new string }
	got := make(chan change, 10)
	configcenter.WatchAs(c, "db.password", func(old, new string) { got <- change{old, new} })
	tokens := make(chan string, 10)
	configcenter.WatchAs(c, "api.token", func(_, new string) { tokens <- new })

	if _, err := cli.Put(ctx, "/svc/app.yaml", "db:\n  user: app\n  password: "+k.enc(t, "second-secret")+"\n"); err != nil {
		t.Fatal(err)
	}
	select {
	case ch := <-got:
		if ch != (change{"first-secret", "second-secret"}) {
			t.Fatalf("callback got %+v", ch)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("no callback")
	}
	if _, err := cli.Put(ctx, "/svc/kv/api/token", k.enc(t, "token-2")); err != nil {
		t.Fatal(err)
	}
	select {
	case v := <-tokens:
		if v != "token-2" {
			t.Fatalf("token callback got %q", v)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("no token callback")
	}
	// A bad value is rejected; the last good one stays.
	if _, err := cli.Put(ctx, "/svc/kv/api/token", "ENC(AAAAAAAAAAAAAAAAAAAAAAAAAAAA)"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "rejected change", func() bool { return c.Stats().ReloadErrors == 1 })
	if c.Snapshot().String("api.token", "") != "token-2" {
		t.Fatal("bad change applied")
	}
}

// The watcher is behind a compaction at head: the watch fails with
// ErrCompacted, the source re-reads the full state once and watches on;
// every later change still arrives once.
func TestCompactionWhileBehind(t *testing.T) {
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	ctx := ctxT(t)
	if _, err := cli.Put(ctx, "/c/a", "0"); err != nil {
		t.Fatal(err)
	}
	src, err := etcd.New(cli, etcd.Options{Prefix: "/c/", RetryInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.Load(ctx); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 5; i++ {
		if _, err := cli.Put(ctx, "/c/a", strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cli.Delete(ctx, "/c/b"); err != nil { // no-op delete
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx, "/c/b", "x"); err != nil {
		t.Fatal(err)
	}
	head := srv.Compact(t, cli)

	var r recorder
	startWatch(t, src, &r)
	eventually(t, "resync", func() bool { s, _ := r.get(); return len(s) == 1 })
	put, err := cli.Put(ctx, "/c/a", "after")
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "change after resync", func() bool { s, _ := r.get(); return len(s) == 2 })
	states, errs := r.get()
	if len(errs) != 1 || !errors.Is(errs[0], etcd.ErrWatchBroken) || !strings.Contains(errs[0].Error(), "compacted") {
		t.Fatalf("errors %v, want one compaction", errs)
	}
	if revs := r.revisions(t); revs[0] != head || revs[1] != put.Header.Revision {
		t.Fatalf("revisions %v, want [%d %d]", revs, head, put.Header.Revision)
	}
	if states[0].Values["a"] != "5" || states[0].Values["b"] != "x" || states[1].Values["a"] != "after" {
		t.Fatalf("states %+v", states)
	}
}

// The server restarts under a running watcher: changes before and after
// arrive exactly once, in revision order, and the watcher keeps going.
func TestServerRestartUnderWatcher(t *testing.T) {
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	ctx := ctxT(t)
	if _, err := cli.Put(ctx, "/r/app.yaml", "v: 0\n"); err != nil {
		t.Fatal(err)
	}
	src, err := etcd.New(cli, etcd.Options{Key: "/r/app.yaml", RetryInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.Load(ctx); err != nil {
		t.Fatal(err)
	}
	var r recorder
	startWatch(t, src, &r)
	var want []int64
	put := func(v string) {
		t.Helper()
		// Retry while the client reconnects after the restart.
		for {
			resp, err := cli.Put(ctx, "/r/app.yaml", v)
			if err == nil {
				want = append(want, resp.Header.Revision)
				return
			}
			if ctx.Err() != nil {
				t.Fatal(err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	put("v: 1\n")
	eventually(t, "v1", func() bool { s, _ := r.get(); return len(s) == 1 })
	srv.Restart()
	put("v: 2\n")
	put("v: 3\n")
	eventually(t, "v3", func() bool { s, _ := r.get(); return len(s) == 3 })
	srv.Stop()
	time.Sleep(200 * time.Millisecond) // the watcher notices
	srv.Restart()
	put("v: 4\n")
	eventually(t, "v4", func() bool { s, _ := r.get(); return len(s) >= 4 })
	time.Sleep(200 * time.Millisecond) // no late duplicate
	states, _ := r.get()
	if got := r.revisions(t); !slices.Equal(got, want) {
		t.Fatalf("revisions %v, want %v", got, want)
	}
	if string(states[len(states)-1].Docs[0].Data) != "v: 4\n" {
		t.Fatalf("last state %q", states[len(states)-1].Docs[0].Data)
	}
}

// 1,000 rapid changes from several writers: the watcher delivers every
// revision exactly once and in order, and a Config on the same prefix
// ends on the final values.
func TestThousandRapidChanges(t *testing.T) {
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	ctx := ctxT(t)
	if _, err := cli.Put(ctx, "/rapid/w0", "-1"); err != nil {
		t.Fatal(err)
	}
	src, err := etcd.New(cli, etcd.Options{Prefix: "/rapid/"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.Load(ctx); err != nil {
		t.Fatal(err)
	}
	var r recorder
	startWatch(t, src, &r)
	cfgSrc, err := etcd.New(cli, etcd.Options{Prefix: "/rapid/"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := configcenter.New(ctx, configcenter.Options{Sources: []configcenter.Source{cfgSrc}, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	const writers, perWriter = 4, 250
	revs := make([][]int64, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				resp, err := cli.Put(ctx, fmt.Sprintf("/rapid/w%d", w), strconv.Itoa(i))
				if err != nil {
					t.Error(err)
					return
				}
				revs[w] = append(revs[w], resp.Header.Revision)
			}
		}()
	}
	wg.Wait()
	var want []int64
	for _, rs := range revs {
		want = append(want, rs...)
	}
	slices.Sort(want)
	if len(want) != writers*perWriter {
		t.Fatalf("%d puts", len(want))
	}
	eventually(t, "all changes", func() bool { s, _ := r.get(); return len(s) >= len(want) })
	time.Sleep(100 * time.Millisecond)
	if got := r.revisions(t); !slices.Equal(got, want) {
		t.Fatalf("delivered %d revisions (first %v), want %d", len(got), got[:min(5, len(got))], len(want))
	}
	states, errs := r.get()
	last := states[len(states)-1].Values
	for w := range writers {
		if last[fmt.Sprintf("w%d", w)] != strconv.Itoa(perWriter-1) {
			t.Fatalf("final state %v", last)
		}
	}
	if len(errs) != 0 {
		t.Fatalf("errors: %v", errs)
	}
	eventually(t, "config final state", func() bool {
		s := c.Snapshot()
		for w := range writers {
			if s.Int(fmt.Sprintf("w%d", w), -1) != perWriter-1 {
				return false
			}
		}
		return true
	})
}

// A deleted key is reported and the last state stays; Close ends Watch and
// leaves no goroutine behind.
func TestKeyDeletedAndClose(t *testing.T) {
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	ctx := ctxT(t)
	if _, err := cli.Put(ctx, "/d/app.json", `{"a":1}`); err != nil {
		t.Fatal(err)
	}
	opts := []goleak.Option{goleak.IgnoreCurrent()}
	src, err := etcd.Dial(clientv3.Config{Endpoints: []string{srv.Endpoint}, DialTimeout: 10 * time.Second}, etcd.Options{Key: "/d/app.json"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.Load(ctx); err != nil {
		t.Fatal(err)
	}
	var r recorder
	done := make(chan error, 1)
	go func() { done <- src.Watch(context.Background(), r.onChange, r.onError) }()
	if _, err := cli.Delete(ctx, "/d/app.json"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "deletion error", func() bool { _, e := r.get(); return len(e) == 1 })
	if _, err := cli.Put(ctx, "/d/app.json", `{"a":2}`); err != nil {
		t.Fatal(err)
	}
	eventually(t, "re-created", func() bool { s, _ := r.get(); return len(s) == 1 })
	states, errs := r.get()
	if !errors.Is(errs[0], etcd.ErrKeyDeleted) || string(states[0].Docs[0].Data) != `{"a":2}` {
		t.Fatalf("states %v errs %v", states, errs)
	}
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("Watch did not return after Close")
	}
	if _, err := src.Load(ctx); !errors.Is(err, etcd.ErrClosed) {
		t.Fatalf("Load after Close: %v", err)
	}
	goleak.VerifyNone(t, opts...)
}
