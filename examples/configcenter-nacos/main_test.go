package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kmsgo/kmsgo/configcenter/nacos/nacostest"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestRunLoadsAndWatches(t *testing.T) {
	srv := nacostest.StartT(t, nacostest.Options{})
	enc := "ENC(AAECAwQFBgcICQ==)" // as stored: the example never decrypts
	srv.Publish("dev", "ORDERS", "orders.yaml", "db:\n  password: "+enc+"\n")
	srv.Publish("dev", "ORDERS", "orders-local.properties", "server.port=8080\n")
	dir, err := os.MkdirTemp("", "example-nacos-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for range 50 {
			if os.RemoveAll(dir) == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})

	var out syncBuffer
	done := make(chan error, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	go func() {
		done <- run(ctx, []string{
			"--server", srv.Addr(), "--namespace", "dev", "--group", "ORDERS",
			"--dataid", "orders.yaml,orders-local.properties",
			"--dir", filepath.Join(dir, "nacos"), "--print", "--watch", "--changes", "1",
		}, &out)
	}()

	deadline := time.Now().Add(time.Minute)
	for srv.Listeners("dev", "ORDERS", "orders-local.properties") == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("never subscribed; output:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(time.Second) // let the SDK finish its batch-listen (see configcenter/nacos tests)
	// Publish again only if the SDK's lost-push race swallowed the push.
	var runErr error
	returned := false
	for i := 0; i < 3 && !returned; i++ {
		srv.Publish("dev", "ORDERS", "orders-local.properties", fmt.Sprintf("server.port=909%d\n", i))
		select {
		case runErr = <-done:
			returned = true
		case <-time.After(20 * time.Second):
		}
	}
	if !returned {
		t.Fatalf("run did not return after one change; output:\n%s", out.String())
	}
	if runErr != nil {
		t.Fatal(runErr)
	}
	got := out.String()
	for _, want := range []string{
		"loaded revision ", "2 document(s)",
		"  orders.yaml (from suffix, ", "    |   password: " + enc,
		"    | server.port=8080", "changed revision ", "    | server.port=909",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	info, err := os.Stat(filepath.Join(dir, "nacos", "cache"))
	if err != nil || info.Mode().Perm() != 0o700 {
		t.Fatalf("cache dir: %v %v", info, err)
	}
}
