package jobs_test

import "github.com/kmsgo/kmsgo/jobs/jobstest"

// Shared helpers (package jobstest), under the names these tests use.
type fakeClock = jobstest.Clock

func newClock() *fakeClock { return jobstest.NewClock() }

var (
	metric           = jobstest.Metric
	waitFor          = jobstest.WaitFor
	stop             = jobstest.Stop
	settleGoroutines = jobstest.SettleGoroutines
)
