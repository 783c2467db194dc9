package main

import (
	"context"
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"gorm.io/gorm"

	"github.com/kmsgo/kmsgo/jobs"
	"github.com/kmsgo/kmsgo/ormplugin"
)

// renewReport is what `kmsctl orm renew` prints.
type renewReport struct {
	Mode          string `json:"mode"`
	DryRun        bool   `json:"dry_run"`
	Resumed       bool   `json:"resumed"`
	KeysScanned   int64  `json:"keys_scanned"`
	KeysRenewed   int64  `json:"keys_renewed"`
	KeysSkipped   int64  `json:"keys_skipped"`
	Rows          int64  `json:"rows"`
	ValuesScanned int64  `json:"values_scanned"`
	ValuesRenewed int64  `json:"values_renewed"`
	ValuesSkipped int64  `json:"values_skipped"`
	ValuesFailed  int64  `json:"values_failed"`
	RowsRetried   int64  `json:"rows_retried"`
	KeysDeleted   int64  `json:"keys_deleted"`
	KMSCalls      int64  `json:"kms_calls"`
}

func (a *app) ormRenewJobCmd() *cobra.Command {
	var f ormFlags
	var t tableFlags
	var mode string
	var dryRun bool
	var leaseTTL time.Duration
	cmd := &cobra.Command{
		Use:   "renew",
		Short: "Run the database renewal job once (re-wrap data keys, optionally re-encrypt a table)",
		Long: `renew runs once the renewal job that applications started by the kmsgo starter
schedule (database.renewal): after a master key rotation it re-wraps every stored
data key and blind-index key that is not under the primary version of its master
key (no table row changes), then with --mode reencrypt re-encrypts the values of
--table under fresh data keys, batch by batch, each row updated by
compare-and-swap so that a row the application changes meanwhile keeps the
application's value, and deletes the data keys no value references any more.

It takes the job's lease in the kmsgo_jobs table of the same database (job
ormplugin_renewal), so it never runs while an application instance runs the
job, and it saves a cursor after every batch: if it is interrupted (Ctrl-C,
crash, kill), the next run, by this command or by the application, resumes
there. It fails when another runner holds the lease; a dead runner's lease
expires after --lease-ttl. Progress goes to stderr, the report to stdout.

--dry-run writes nothing and takes no lease: kmsd re-wraps the keys to tell
which would change, and the values a re-encryption would rewrite are counted
without being decrypted. The exit status is 1 when values could not be
renewed (values_failed: list them with kmsctl orm verify).`,
		Example: `  kmsctl keys rotate alias/orders
  kmsctl orm renew --driver postgres --dsn 'postgres://app@db/shop' --dry-run
  kmsctl orm renew --driver postgres --dsn 'postgres://app@db/shop'
  # full re-encryption of a table:
  kmsctl orm renew --dsn ./app.db --mode reencrypt --table users --key-id alias/orders \
      --column email:string:index=email_bidx --column phone`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts := ormplugin.RenewalOptions{Mode: mode, DryRun: dryRun, BatchSize: t.batchSize,
				OlderThanVersion: t.older, KeepKeys: t.keepKeys, KeyGrace: t.keyGrace}
			keyID := t.keyID
			switch mode {
			case ormplugin.RenewRewrap:
				if t.table != "" || len(t.columns) > 0 {
					return fmt.Errorf("%w: --table and --column need --mode reencrypt", errORMFlags)
				}
				if keyID == "" {
					keyID = "unused" // re-wrapping never creates a data key
				}
			case ormplugin.RenewReencrypt:
				spec, err := t.spec()
				if err != nil {
					return err
				}
				opts.Tables = []ormplugin.TableSpec{spec}
			default:
				return fmt.Errorf("%w: --mode %q (rewrap or reencrypt)", errORMFlags, mode)
			}
			if t.batchSize <= 0 || leaseTTL <= 0 {
				return fmt.Errorf("%w: --batch-size and --lease-ttl must be positive", errORMFlags)
			}
			client, err := a.clientFor()
			if err != nil {
				return err
			}
			return a.withPlugin(&f, keyID, func(db *gorm.DB, p *ormplugin.Plugin) error {
				stderr := cmd.ErrOrStderr()
				opts.Progress = func(r ormplugin.RenewalReport) {
					switch r.Phase {
					case ormplugin.RenewPhaseKeys:
						fmt.Fprintf(stderr, "keys: %d scanned, %d re-wrapped, %d already current\n", r.Keys.Scanned, r.Keys.Renewed, r.Keys.Skipped)
					case ormplugin.RenewPhaseRows:
						fmt.Fprintf(stderr, "%s: %d rows, %d values re-encrypted, %d current, %d failed\n", r.Table, r.Rows, r.Values.Renewed, r.Values.Skipped, r.Values.Failed)
					}
				}
				var rep ormplugin.RenewalReport
				run := func(ctx context.Context) (int, error) {
					opts.Cursor = jobs.Cursor(ctx)
					if !dryRun {
						opts.SaveCursor = jobs.SaveCursor
					}
					if opts.Cursor != "" {
						fmt.Fprintln(stderr, "resuming an interrupted renewal")
					}
					var err error
					rep, err = p.Renew(ctx, db, client, opts)
					return int(rep.Keys.Renewed + rep.Values.Renewed), err
				}
				if dryRun {
					_, err = run(cmd.Context())
				} else {
					err = runLeased(cmd.Context(), db, leaseTTL, run)
				}
				if err != nil {
					if errors.Is(err, jobs.ErrLeaseHeld) {
						return fmt.Errorf("%w: another runner (an application instance or kmsctl) is renewing this database; try again later", err)
					}
					return fmt.Errorf("%w (the next run resumes where this one stopped)", err)
				}
				out := renewReport{Mode: rep.Mode, DryRun: rep.DryRun, Resumed: rep.Resumed,
					KeysScanned: rep.Keys.Scanned, KeysRenewed: rep.Keys.Renewed, KeysSkipped: rep.Keys.Skipped,
					Rows: rep.Rows, ValuesScanned: rep.Values.Scanned, ValuesRenewed: rep.Values.Renewed,
					ValuesSkipped: rep.Values.Skipped, ValuesFailed: rep.Values.Failed, RowsRetried: rep.Retried,
					KeysDeleted: rep.KeysDeleted, KMSCalls: rep.KMSCalls}
				if err := a.emit(cmd.OutOrStdout(), out, func(tw *tabwriter.Writer) {
					fmt.Fprintln(tw, "MODE\tKEYS SCANNED\tRENEWED\tSKIPPED\tVALUES SCANNED\tRENEWED\tSKIPPED\tFAILED\tKMS CALLS")
					fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\n", out.Mode, out.KeysScanned, out.KeysRenewed, out.KeysSkipped,
						out.ValuesScanned, out.ValuesRenewed, out.ValuesSkipped, out.ValuesFailed, out.KMSCalls)
				}); err != nil {
					return err
				}
				if out.ValuesFailed > 0 {
					return fmt.Errorf("%w: %d values could not be renewed (list them with kmsctl orm verify)", errORMIncomplete, out.ValuesFailed)
				}
				return nil
			})
		},
	}
	f.register(cmd)
	fl := cmd.Flags()
	fl.StringVar(&mode, "mode", ormplugin.RenewRewrap, "rewrap (keys only) or reencrypt (keys, then the values of --table)")
	fl.BoolVar(&dryRun, "dry-run", false, "write nothing; report what would be renewed")
	fl.DurationVar(&leaseTTL, "lease-ttl", jobs.DefaultLeaseTTL, "lease of the renewal job; a dead runner frees it after this")
	fl.StringVar(&t.table, "table", "", "table to re-encrypt (--mode reencrypt)")
	t.registerColumns(cmd)
	fl.StringVar(&t.keyID, "key-id", "", "master key of new data keys, as the application's ormplugin.Config.KeyID (--mode reencrypt)")
	fl.IntVar(&t.batchSize, "batch-size", ormplugin.DefaultBatchSize, "rows (or key rows) per batch and transaction")
	fl.IntVar(&t.older, "older-than-version", 0, "re-encrypt only values whose data key was generated under a master key version below this (0: all)")
	fl.BoolVar(&t.keepKeys, "keep-keys", false, "keep data key rows no value references any more")
	fl.DurationVar(&t.keyGrace, "key-grace", 0, "delete unreferenced data key rows only when older than this (default: MaxKeyAge + 10m)")
	return cmd
}

// runLeased runs fn once as the renewal job under its lease in db's
// kmsgo_jobs table, with the cursor of an interrupted earlier run.
func runLeased(ctx context.Context, db *gorm.DB, ttl time.Duration, fn func(context.Context) (int, error)) error {
	store, err := jobs.NewStore(db)
	if err != nil {
		return err
	}
	sched, err := jobs.New(jobs.Config{Store: store, LeaseTTL: ttl, Timeout: 24 * time.Hour}, nil,
		jobs.Job{Name: ormplugin.RenewalJob, Schedule: "@every 8760h", Run: fn})
	if err != nil {
		return err
	}
	defer func() { _ = sched.Stop(context.Background()) }()
	_, err = sched.RunNow(ctx, ormplugin.RenewalJob)
	return err
}
