package jobs_test

import (
	"context"
	"fmt"

	"github.com/kmsgo/kmsgo/jobs"
)

// ExampleScheduler_RunNow adds a job of one's own next to the maintenance
// jobs and runs it on demand.
func ExampleScheduler_RunNow() {
	s, err := jobs.New(jobs.Config{}, nil, jobs.Job{
		Name:     "renew_ciphertexts",
		Schedule: "0 3 * * *", // 03:00 UTC daily
		Run: func(ctx context.Context) (int, error) {
			return 42, nil // items changed
		},
	})
	if err != nil {
		panic(err)
	}
	res, err := s.RunNow(context.Background(), "renew_ciphertexts")
	fmt.Println(res.Items, err)
	// Output: 42 <nil>
}

// ExampleReportChange: a job reports each item it changed; with
// Config.AuditChange every change is audited as it happens, and a failed
// audit stops the job.
func ExampleReportChange() {
	audit := func(_ context.Context, job string, c jobs.Change) error {
		fmt.Printf("audit %s: %s %s %s -> %s\n", job, c.Key, c.Field, c.Old, c.New)
		return nil
	}
	s, err := jobs.New(jobs.Config{AuditChange: audit}, nil, jobs.Job{
		Name:     "retire",
		Schedule: "@daily",
		Run: func(ctx context.Context) (int, error) {
			// ... change key k1, then report it:
			if err := jobs.ReportChange(ctx, jobs.Change{Key: "k1", Field: jobs.FieldState, Old: "Enabled", New: "Disabled"}); err != nil {
				return 1, err // not audited: stop changing things
			}
			return 1, nil
		},
	})
	if err != nil {
		panic(err)
	}
	res, err := s.RunNow(context.Background(), "retire")
	fmt.Println(res.Items, len(res.Changes), err)
	// Output:
	// audit retire: k1 state Enabled -> Disabled
	// 1 1 <nil>
}
