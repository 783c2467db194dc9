package audit_test

import (
	"context"
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
