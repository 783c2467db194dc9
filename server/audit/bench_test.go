package audit_test

import (
	"context"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kmsgo/kmsgo/server/audit"
	"github.com/kmsgo/kmsgo/server/dbtest"
)

// BenchmarkAppend measures Append from 64 concurrent callers (2 cores x 32)
// on SQLite: group commit (default MaxBatch 256) against one transaction per
// record (MaxBatch 1), the naive design.
func BenchmarkAppend(b *testing.B) {
	cases := []struct {
		name string
		cfg  audit.Config
	}{
		{"group", audit.Config{}},
		{"per-record", audit.Config{MaxBatch: 1}},
		{"spool", audit.Config{SpoolDir: b.TempDir()}},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			db := migrated(b, dbtest.Open(b, dbtest.SQLite))
			cfg := tc.cfg
			cfg.ReplicaID = "bench"
			l := newLogger(b, db, cfg)
			rec := sample(1)
			b.SetParallelism(32)
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := l.Append(context.Background(), rec); err != nil {
						b.Error(err)
						return
					}
				}
			})
			elapsed := time.Since(start)
			b.StopTimer()
			st := l.Stats()
			b.ReportMetric(float64(st.Records)/elapsed.Seconds(), "records/s")
			if st.Batches > 0 {
				b.ReportMetric(float64(st.Records)/float64(st.Batches), "records/batch")
			}
			b.ReportMetric(float64(st.MaxBatch), "max-batch")
		})
	}
}

// BenchmarkVerify measures Verify over 100,000 records (two replica chains
// written through Loggers with group commit) on every configured dialect.
// Populating takes longer than one Verify; run it with -benchtime=1x.
func BenchmarkVerify(b *testing.B) {
	const n = 100_000
	for _, d := range dbtest.Dialects(b) {
		b.Run(d, func(b *testing.B) {
			db := migrated(b, dbtest.Open(b, d))
			start := time.Now()
			for r := range 2 {
				l := newLogger(b, db, audit.Config{ReplicaID: fmt.Sprintf("kmsd-%d", r), MaxBatch: 1024})
				var wg sync.WaitGroup
				for w := range 64 {
					wg.Go(func() {
						for i := w; i < n/2; i += 64 {
							if err := l.Append(context.Background(), sample(i)); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				wg.Wait()
				l.Close()
			}
			b.Logf("%s: wrote %d records in %s", d, n, time.Since(start).Round(time.Millisecond))
			b.ResetTimer()
			for b.Loop() {
				rep := verify(b, db)
				if !rep.OK || rep.Checked != n {
					b.Fatalf("report %+v", rep)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/record")
			b.ReportMetric(float64(n)/(float64(b.Elapsed().Seconds())/float64(b.N)), "records/s")
			var avg float64
			if err := db.Raw("SELECT AVG(LENGTH(replica_id)+LENGTH(access_key_id)+LENGTH(action)+LENGTH(key_id)+LENGTH(result)+" +
				"LENGTH(reason_code)+LENGTH(request_id)+LENGTH(source_addr)+LENGTH(details)+LENGTH(prev_hash)+LENGTH(hash)+24) FROM kms_audit_records").Scan(&avg).Error; err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(avg, "payload-bytes/record")
			if d == dbtest.SQLite {
				var pages, size int64
				db.Raw("PRAGMA page_count").Scan(&pages)
				db.Raw("PRAGMA page_size").Scan(&size)
				b.ReportMetric(float64(pages*size)/n, "db-bytes/record")
			}
			// Resuming from the heads of this verification reads only new records.
			rep := verify(b, db)
			l := newLogger(b, db, audit.Config{ReplicaID: "kmsd-0"})
			for i := range 1000 {
				if err := l.Append(context.Background(), sample(i)); err != nil {
					b.Fatal(err)
				}
			}
			t0 := time.Now()
			res, err := audit.VerifyWith(context.Background(), db, testKey, audit.VerifyOptions{From: rep.Heads})
			if err != nil || !res.OK || res.Checked != 1000 {
				b.Fatalf("resumed verify: %+v, %v", res, err)
			}
			b.ReportMetric(float64(time.Since(t0).Microseconds())/1000, "ms/resumed-verify-of-1000-new")
		})
	}
}

// BenchmarkAppendSerial measures the latency of one Append with a single
// caller on every configured dialect: one transaction per record (db), or
// one spool write per record (spool), what a request pays at concurrency 1.
func BenchmarkAppendSerial(b *testing.B) {
	for _, d := range dbtest.Dialects(b) {
		b.Run(d, func(b *testing.B) {
			for _, spool := range []bool{false, true} {
				name := "db"
				cfg := audit.Config{ReplicaID: "serial"}
				if spool {
					name, cfg.SpoolDir = "spool", b.TempDir()
				}
				b.Run(name, func(b *testing.B) {
					db := migrated(b, dbtest.Open(b, d))
					l := newLogger(b, db, cfg)
					rec := sample(1)
					for b.Loop() {
						if err := l.Append(context.Background(), rec); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
		})
	}
}

// BenchmarkSpoolDrain measures the database side of the spool: appending
// 512 records to the spool and waiting until the writer has moved them
// into SQLite. cpu-µs/record is the process's CPU time per record.
func BenchmarkSpoolDrain(b *testing.B) {
	db := migrated(b, dbtest.Open(b, dbtest.SQLite))
	l := newLogger(b, db, audit.Config{ReplicaID: "drain", SpoolDir: b.TempDir()})
	rec := sample(1)
	ctx := context.Background()
	c0 := processCPU(b)
	for b.Loop() {
		for range 512 {
			if err := l.Append(ctx, rec); err != nil {
				b.Fatal(err)
			}
		}
		if err := l.Flush(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(processCPU(b)-c0)/float64(time.Microsecond)/float64(512*b.N), "cpu-µs/record")
}

func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
