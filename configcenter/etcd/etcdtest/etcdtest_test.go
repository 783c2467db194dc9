package etcdtest_test

import (
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/kmsgo/kmsgo/configcenter/etcd/etcdtest"
)

func TestStartRestartCompact(t *testing.T) {
	srv := etcdtest.Start(t)
	c := srv.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := c.Put(ctx, "k", "v1"); err != nil {
		t.Fatal(err)
	}
	srv.Restart()
	resp, err := c.Get(ctx, "k")
	if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "v1" {
		t.Fatalf("after restart: %v %v", resp, err)
	}
	put, err := c.Put(ctx, "k", "v2")
	if err != nil {
		t.Fatal(err)
	}
	if rev := srv.Compact(t, c); rev < put.Header.Revision {
		t.Fatalf("compacted at %d, before the last put %d", rev, put.Header.Revision)
	}
	if _, err := c.Get(ctx, "k", clientv3.WithRev(put.Header.Revision-1)); err == nil {
		t.Fatal("read below the compaction revision succeeded")
	}
}
