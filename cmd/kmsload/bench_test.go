package main

import (
	"context"
	"io"
	"testing"

	"github.com/kmsgo/kmsgo/server/kmstest"
)

// BenchmarkOps runs every operation of the load generator in-process
// against kmstest (dev HSM backend, SQLite), client and server sharing the
// process: `go test -bench Ops -cpuprofile cpu.out ./cmd/kmsload` shows
// where a request's time goes, which the out-of-process kmsload cannot.
func BenchmarkOps(b *testing.B) {
	srv := kmstest.Start(b)
	opts, err := parseArgs([]string{"--endpoint", srv.URL, "--concurrency", "64"}, io.Discard)
	if err != nil {
		b.Fatal(err)
	}
	creds := credentials{AccessKeyID: srv.AccessKeyID, SecretAccessKey: srv.SecretAccessKey, Region: srv.Region}
	tg, err := newTarget(opts, creds, creds.Region)
	if err != nil {
		b.Fatal(err)
	}
	defer tg.hc.CloseIdleConnections()
	keys, err := tg.setupKeys(context.Background(), opts, io.Discard)
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range plan(options{Ops: opts.Ops, Concurrency: []int{1}}, keys) {
		name := c.op
		if c.protection != "" {
			name += "/" + c.protection
		}
		fn := tg.op(c.op, c.key)
		b.Run(name, func(b *testing.B) {
			b.SetParallelism(8) // 8 x GOMAXPROCS workers
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := fn(context.Background()); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
