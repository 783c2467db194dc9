package configcenter

import (
	"context"
	"fmt"
	"strconv"
)

// SourceRenewer renews the ENC values stored in one config source (an etcd
// key or prefix, a set of Nacos dataIds) with compare-and-swap writes:
// etcd.Renewer and nacos.Renewer. Run starts a Renewal from opts and
// returns the counts; it writes nothing when opts.DryRun is set.
type SourceRenewer interface {
	Name() string
	Renew(ctx context.Context, opts RenewOptions) (RenewReport, error)
}

// RenewJobOptions configure RenewJob.
type RenewJobOptions struct {
	// Renew is the renewal setup shared by every source (Client, Marker,
	// EncryptionContext). DryRun makes the job only count.
	Renew RenewOptions
	// Cursor and SaveCursor, when set, make the job resumable across
	// runners: wire them to jobs.Cursor and jobs.SaveCursor. The cursor is
	// the number of sources already done in the current pass.
	Cursor     func(ctx context.Context) string
	SaveCursor func(ctx context.Context, cursor string) error
	// OnReport, when set, receives each source's report (metrics, logs).
	OnReport func(source string, r RenewReport)
}

// RenewJob returns a function usable as jobs.Job{Run: ...}: it renews the
// sources in order and returns how many ENC values it re-encrypted. Every
// source is tried even when one fails; the error then names the failures
// (ErrRenewIncomplete for values left under an old version). While every
// source so far was renewed with no error, each one done advances the
// cursor, so a runner taking over after a crash resumes with the next
// source and a source that failed is tried again by the next run.
func RenewJob(sources []SourceRenewer, opts RenewJobOptions) func(ctx context.Context) (int, error) {
	return func(ctx context.Context) (int, error) {
		start := 0
		if opts.Cursor != nil {
			if n, err := strconv.Atoi(opts.Cursor(ctx)); err == nil && n > 0 && n < len(sources) {
				start = n
			}
		}
		renewed := 0
		var errs []error
		for i := start; i < len(sources); i++ {
			if err := ctx.Err(); err != nil {
				errs = append(errs, err)
				break
			}
			rep, err := sources[i].Renew(ctx, opts.Renew)
			renewed += rep.Renewed
			if opts.OnReport != nil {
				opts.OnReport(sources[i].Name(), rep)
			}
			if err == nil {
				err = rep.Err()
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", sources[i].Name(), err))
				continue
			}
			if opts.SaveCursor != nil && len(errs) == 0 && i+1 < len(sources) {
				if err := opts.SaveCursor(ctx, strconv.Itoa(i+1)); err != nil {
					errs = append(errs, err)
					break
				}
			}
		}
		if len(errs) > 0 {
			return renewed, joinBounded(errs)
		}
		return renewed, nil
	}
}
