package main

import (
	"context"
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/kmsgo/kmsgo/starter/kmsclient"
)

// Exit statuses of kmsctl jobs run.
const (
	exitJobFailed  = 1 // the run ended with an outcome other than ok
	exitJobRunning = 3 // the job was running already (409 JobRunning)
)

// defaultJobWait bounds kmsctl jobs run (kmsd's own jobs.timeout is 10m).
const defaultJobWait = 15 * time.Minute

func (a *app) jobsCmd() *cobra.Command {
	jc := &cobra.Command{
		Use:     "jobs",
		Aliases: []string{"job"},
		Short:   "List kmsd's scheduled jobs and run one now",
		Long: `kmsd runs key maintenance on cron schedules (UTC): destroy_due_keys (keys whose deletion
window ended), rotate_due_keys (keys whose rotation policy is due), cleanup_orphans (HSM
objects of failed creations) and, with audit.retention, audit_retention. Each job runs on
one replica per period (a lease row in the shared database); its last run, outcome and
next run are persisted.

"jobs list" needs the kms:ListJobs permission, "jobs run" kms:RunJob.`,
	}
	var listJSON bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List the jobs with their schedule, last and next run, outcome and lease",
		Long: `List the scheduled jobs of the kmsd replica that answers: schedule, whether the job is
running (and which replica holds its lease until when), the start, outcome and item count
of the last run, and the next due time. Times are UTC.`,
		Example: `  kmsctl jobs list
  kmsctl jobs list --json`,
		Args: cobra.NoArgs,
		RunE: a.withClient(func(cmd *cobra.Command, c *kmsclient.Client, _ []string) error {
			if listJSON {
				a.output = "json"
			}
			js, err := c.ListJobs(cmd.Context())
			if err != nil {
				return err
			}
			if js == nil {
				js = []kmsclient.JobInfo{}
			}
			return a.emit(cmd.OutOrStdout(), js, func(tw *tabwriter.Writer) {
				fmt.Fprintln(tw, "NAME\tSCHEDULE\tRUNNING\tLAST START\tOUTCOME\tITEMS\tNEXT RUN\tLEASE")
				for _, j := range js {
					running, lease := "no", "-"
					if j.Running {
						running = "yes"
					}
					if j.LeaseHolder != "" {
						lease = j.LeaseHolder + " until " + fmtTime(j.LeaseUntil)
					}
					outcome := orDash(j.LastOutcome)
					if j.LastError != "" {
						outcome += ": " + j.LastError
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", j.Name, j.Schedule, running,
						fmtTime(j.LastStart), outcome, j.LastItems, fmtTime(j.NextRun), lease)
				}
			})
		}),
	}
	list.Flags().BoolVar(&listJSON, "json", false, "print JSON (same as -o json)")

	var runJSON bool
	var wait time.Duration
	run := &cobra.Command{
		Use:   "run NAME",
		Short: "Run a job now and wait for its result",
		Long: `Run the named job now, through the same lease as its scheduled runs, and wait until it
ended; print what it changed (for maintenance jobs each key with its old and new state or
primary version; each change is also an audit record).

Exit status: 0 when the run succeeded, 1 when it failed (or on any other error),
3 when the job is running already, on this or another replica (409 JobRunning;
retry later).`,
		Example: `  kmsctl jobs run rotate_due_keys
  kmsctl jobs run destroy_due_keys --json
  kmsctl jobs run audit_retention --wait 30m`,
		Args: cobra.ExactArgs(1),
		RunE: a.withClient(func(cmd *cobra.Command, c *kmsclient.Client, args []string) error {
			if runJSON {
				a.output = "json"
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), wait)
			defer cancel()
			fmt.Fprintf(cmd.ErrOrStderr(), "running job %s...\n", args[0])
			r, err := c.RunJob(ctx, args[0])
			if errors.Is(err, kmsclient.ErrJobRunning) {
				return &exitError{code: exitJobRunning, err: fmt.Errorf("job %s is running already (on this or another replica); retry later: %w", args[0], err)}
			}
			if err != nil {
				return err
			}
			if err := a.emit(cmd.OutOrStdout(), r, func(tw *tabwriter.Writer) {
				fmt.Fprintf(tw, "Job:\t%s\nStarted:\t%s\nDuration:\t%s\nOutcome:\t%s\nItems changed:\t%d\n", r.Job,
					fmtTime(&r.Started), time.Duration(r.DurationMS)*time.Millisecond, r.Outcome, r.Items)
				if r.Error != "" {
					fmt.Fprintf(tw, "Error:\t%s\n", r.Error)
				}
				if len(r.Changes) > 0 {
					fmt.Fprintln(tw, "\nKEY ID\tFIELD\tOLD\tNEW")
					for _, ch := range r.Changes {
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", ch.KeyID, ch.Field, ch.Old, ch.New)
					}
				}
			}); err != nil {
				return err
			}
			if r.Outcome != kmsclient.JobOutcomeOK {
				return &exitError{code: exitJobFailed, err: fmt.Errorf("job %s failed (%s): %s", r.Job, r.Outcome, r.Error)}
			}
			return nil
		}),
	}
	run.Flags().BoolVar(&runJSON, "json", false, "print JSON (same as -o json)")
	run.Flags().DurationVar(&wait, "wait", defaultJobWait, "how long to wait for the run to end (the run is cancelled when kmsctl gives up)")
	jc.AddCommand(list, run)
	return jc
}
