package jobs_test

import (
	"runtime"
	"testing"
	"time"

	"github.com/kmsgo/kmsgo/jobs/jobstest"
)

// settleGoroutines waits until the goroutine count is back to at most
// base, failing the test with a stack dump otherwise.
func settleGoroutines(t *testing.T, base int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("goroutine leak: %d > %d\n%s", runtime.NumGoroutine(), base, buf)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Shared helpers (package jobstest), under the names these tests use.
type fakeClock = jobstest.Clock

func newClock() *fakeClock { return jobstest.NewClock() }

var (
	metric  = jobstest.Metric
	waitFor = jobstest.WaitFor
	stop    = jobstest.Stop
)
