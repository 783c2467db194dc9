package ormplugin

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"gorm.io/gorm"
)

// RenewalJob is the name of the renewal job in the jobs table
// (kmsgo_jobs) when it runs under a jobs.Store lease: the starter's
// scheduled job and `kmsctl orm renew` share it, so they never run at once
// and resume each other's cursor.
const RenewalJob = "ormplugin_renewal"

// Renewal modes (RenewalOptions.Mode).
const (
	// RenewRewrap re-wraps the stored data keys and blind-index keys under
	// the primary version of their master key (RenewDataKeys): no row of
	// the application's tables is rewritten.
	RenewRewrap = "rewrap"
	// RenewReencrypt re-wraps the keys, then re-encrypts the values of the
	// given tables under fresh data keys (Reencrypt) and deletes the data
	// keys no value references any more.
	RenewReencrypt = "reencrypt"
)

// Phases of a renewal (RenewalReport.Phase).
const (
	RenewPhaseKeys = "keys" // re-wrapping stored keys
	RenewPhaseRows = "rows" // re-encrypting values, table by table
	RenewPhaseDone = "done"
)

// RenewalOptions configures Plugin.Renew.
type RenewalOptions struct {
	// Mode is RenewRewrap (the default) or RenewReencrypt.
	Mode string
	// Models (Go structs with encrypted fields) and Tables (tables described
	// by names) are the tables RenewReencrypt re-encrypts, models first, in
	// order. RenewRewrap ignores them: it renews every stored key.
	Models []any
	Tables []TableSpec
	// BatchSize is the number of key rows or table rows per batch (and per
	// transaction); zero means DefaultBatchSize.
	BatchSize int
	// OlderThanVersion, KeepKeys and KeyGrace are the RewriteOptions of the
	// re-encryption (RenewReencrypt): zero re-encrypts every value.
	OlderThanVersion int
	KeepKeys         bool
	KeyGrace         time.Duration
	// DryRun writes nothing: keys are sent to kmsd's ReEncrypt to learn
	// which would change, and values under keys a re-encryption would
	// retire are counted without being decrypted.
	DryRun bool
	// Cursor is where an interrupted run stopped (RenewalReport.Cursor, or
	// what SaveCursor last received); "" starts from the beginning. A
	// cursor of another mode or naming a table not in the list starts
	// from the beginning too.
	Cursor string
	// SaveCursor, when set, is called after every committed batch with the
	// resume point (for example jobs.SaveCursor); an error stops the run.
	// It is not called in a dry run.
	SaveCursor func(ctx context.Context, cursor string) error
	// Progress, when set, is called after every batch.
	Progress func(RenewalReport)
}

// RenewalCounts counts what one phase of a renewal did.
type RenewalCounts struct {
	// Scanned: keys examined (phase keys), non-NULL encrypted values
	// examined (phase rows).
	Scanned int64
	// Renewed: keys re-wrapped, values re-encrypted (in a dry run: that
	// would be).
	Renewed int64
	// Skipped: keys already under the primary version, values already
	// under a current data key.
	Skipped int64
	// Failed: values that could not be renewed: they do not decrypt (list
	// them with Verify) or the application changed their row on every
	// retry. They are left as they are. A kmsd failure stops the run
	// instead (resume it later).
	Failed int64
}

// RenewalReport is the progress and the final report of Plugin.Renew.
type RenewalReport struct {
	Mode   string
	Phase  string // RenewPhaseKeys, RenewPhaseRows or RenewPhaseDone
	Table  string // table being re-encrypted (phase rows)
	DryRun bool
	// Resumed is set when the run started from a cursor.
	Resumed bool
	Keys    RenewalCounts
	Values  RenewalCounts
	// Rows is the number of table rows examined by the re-encryption.
	Rows int64
	// Retried counts rows re-read because the application updated them
	// between the renewal's read and its compare-and-swap update.
	Retried int64
	// KeysDeleted counts data key rows deleted after re-encryption.
	KeysDeleted int64
	// KMSCalls is the number of kmsd calls the run made (ReEncrypt for
	// keys, GenerateDataKey and Decrypt through the plugin during the run,
	// including those of concurrent statements of this process).
	KMSCalls int64
	// Cursor is the resume point after the last committed batch ("" once
	// done).
	Cursor string
}

// renewCursor is the persisted resume point of a renewal: JSON, at most
// a few hundred bytes.
type renewCursor struct {
	V     int    `json:"v"`
	Mode  string `json:"mode"`
	Phase string `json:"phase"`
	Table string `json:"table,omitempty"`
	After string `json:"after,omitempty"` // data key id (keys), primary key (rows)
}

// parseRenewCursor parses a cursor; ok is false for an empty, malformed or
// foreign one (the run then starts from the beginning).
func parseRenewCursor(s, mode string) (renewCursor, bool) {
	var c renewCursor
	if s == "" || len(s) > 4096 || json.Unmarshal([]byte(s), &c) != nil || c.V != 1 || c.Mode != mode {
		return renewCursor{}, false
	}
	switch c.Phase {
	case RenewPhaseKeys:
		if c.After != "" {
			if n, err := strconv.ParseInt(c.After, 10, 64); err != nil || n < 0 {
				return renewCursor{}, false
			}
		}
	case RenewPhaseRows:
		if c.Table == "" || mode != RenewReencrypt {
			return renewCursor{}, false
		}
	default:
		return renewCursor{}, false
	}
	return c, true
}

func (c renewCursor) String() string {
	b, _ := json.Marshal(c)
	return string(b)
}

// renewTarget is one table to re-encrypt.
type renewTarget struct {
	table string
	model any
}

// Renew runs one renewal of the database after a master key rotation, as
// a resumable job:
//
//  1. every stored data key and blind-index key not wrapped under the
//     primary version of its master key is re-wrapped by kmsd (ReEncrypt);
//     no row of the application's tables changes (RenewDataKeys);
//  2. with Mode RenewReencrypt, the values of opts.Models and opts.Tables
//     are then decrypted and encrypted again under fresh data keys,
//     batch by batch in primary-key order, each row updated by
//     compare-and-swap on its stored values, so a row the application
//     updated in between keeps the application's value (it is read again
//     and re-encrypted); then the data keys no value references are
//     deleted (Reencrypt).
//
// After each committed batch the resume point goes to opts.SaveCursor;
// giving it back as opts.Cursor resumes there (after a crash, a lost
// lease, a kmsd outage). kms re-wraps the keys; nil uses the plugin's own
// KMS when it can (a *kmsclient.Client can). The report counts what was
// scanned, renewed, skipped and failed, and the kmsd calls made.
func (p *Plugin) Renew(ctx context.Context, db *gorm.DB, kms ReEncrypter, opts RenewalOptions) (RenewalReport, error) {
	if p.db == nil {
		return RenewalReport{}, fmt.Errorf("%w: register the plugin with db.Use first", ErrConfig)
	}
	if opts.Mode == "" {
		opts.Mode = RenewRewrap
	}
	if opts.Mode != RenewRewrap && opts.Mode != RenewReencrypt {
		return RenewalReport{}, fmt.Errorf("%w: renewal mode %q (want %s or %s)", ErrConfig, opts.Mode, RenewRewrap, RenewReencrypt)
	}
	if kms == nil {
		kms, _ = p.rawKMS.(ReEncrypter)
		if kms == nil {
			return RenewalReport{}, fmt.Errorf("%w: the KMS cannot re-encrypt; pass a ReEncrypter", ErrConfig)
		}
	}
	var targets []renewTarget
	if opts.Mode == RenewReencrypt {
		for _, m := range opts.Models {
			stmt := &gorm.Statement{DB: db}
			if err := stmt.Parse(m); err != nil {
				return RenewalReport{}, fmt.Errorf("%w: renewal model %T: %w", ErrConfig, m, err)
			}
			targets = append(targets, renewTarget{table: stmt.Schema.Table, model: m})
		}
		for _, t := range opts.Tables {
			m, err := t.model()
			if err != nil {
				return RenewalReport{}, err
			}
			targets = append(targets, renewTarget{table: t.Table, model: m})
		}
		if len(targets) == 0 {
			return RenewalReport{}, fmt.Errorf("%w: re-encryption needs at least one model or table", ErrConfig)
		}
	}

	rep := RenewalReport{Mode: opts.Mode, Phase: RenewPhaseKeys, DryRun: opts.DryRun}
	cur, resumed := parseRenewCursor(opts.Cursor, opts.Mode)
	first := 0 // first target to re-encrypt
	if resumed && cur.Phase == RenewPhaseRows {
		first = -1
		for i, t := range targets {
			if t.table == cur.Table {
				first = i
			}
		}
		if first < 0 { // the table list changed: start over
			resumed, first = false, 0
			cur = renewCursor{}
		}
	}
	if !resumed {
		cur = renewCursor{V: 1, Mode: opts.Mode, Phase: RenewPhaseKeys}
	}
	rep.Resumed = resumed
	rep.Cursor = cur.String()
	calls0 := p.kmsCalls.Load()
	var reencrypts int64
	report := func() {
		rep.KMSCalls = reencrypts + p.kmsCalls.Load() - calls0
		if opts.Progress != nil {
			opts.Progress(rep)
		}
	}
	save := func(c renewCursor) error {
		rep.Cursor = c.String()
		if opts.SaveCursor == nil || opts.DryRun {
			return nil
		}
		return opts.SaveCursor(ctx, rep.Cursor)
	}

	if cur.Phase == RenewPhaseKeys {
		var after int64
		if cur.After != "" {
			after, _ = strconv.ParseInt(cur.After, 10, 64)
		}
		counted := countingReEncrypter{next: kms, n: &reencrypts}
		setKeys := func(kp RenewProgress) {
			rep.Keys.Scanned = kp.Checked + kp.Current
			rep.Keys.Renewed = kp.Rewrapped
			rep.Keys.Skipped = rep.Keys.Scanned - kp.Rewrapped
		}
		kp, err := renewKeys(ctx, db, counted, RenewOptions{BatchSize: opts.BatchSize}, keyRenewal{
			after:  after,
			dryRun: opts.DryRun,
			onBatch: func(kp RenewProgress) error {
				setKeys(kp)
				if err := save(renewCursor{V: 1, Mode: opts.Mode, Phase: RenewPhaseKeys, After: strconv.FormatInt(kp.LastID, 10)}); err != nil {
					return err
				}
				report()
				return nil
			},
		})
		setKeys(kp)
		if err != nil {
			report()
			return rep, err
		}
		if opts.Mode == RenewReencrypt {
			if err := save(renewCursor{V: 1, Mode: opts.Mode, Phase: RenewPhaseRows, Table: targets[0].table}); err != nil {
				return rep, err
			}
		}
		cur = renewCursor{V: 1, Mode: opts.Mode, Phase: RenewPhaseRows, Table: ""}
		report()
	}

	if opts.Mode == RenewReencrypt {
		rep.Phase = RenewPhaseRows
		for i := first; i < len(targets); i++ {
			t := targets[i]
			rep.Table = t.table
			after := ""
			if i == first && cur.Table == t.table {
				after = cur.After
			}
			var base RenewalReport = rep
			apply := func(pr Progress) {
				rep.Values.Scanned = base.Values.Scanned + pr.Values
				rep.Values.Renewed = base.Values.Renewed + pr.Rewritten
				if opts.DryRun {
					rep.Values.Renewed = base.Values.Renewed + pr.Found
				}
				rep.Values.Failed = base.Values.Failed + pr.Undecryptable + pr.Remaining
				rep.Values.Skipped = rep.Values.Scanned - rep.Values.Renewed - rep.Values.Failed
				rep.Rows = base.Rows + pr.Scanned
				rep.Retried = base.Retried + pr.Retried
				rep.KeysDeleted = base.KeysDeleted + pr.KeysDeleted
			}
			pr, err := p.rewrite(ctx, db, t.model, t.table, RewriteOptions{
				BatchSize: opts.BatchSize, OlderThanVersion: opts.OlderThanVersion, KeepKeys: opts.KeepKeys, KeyGrace: opts.KeyGrace,
				Progress: func(pr Progress) { apply(pr); report() },
			}, modeReencrypt, rewriteExtra{
				after: after, skipBad: true, dryRun: opts.DryRun,
				onBatch: func(pr Progress) error {
					apply(pr)
					return save(renewCursor{V: 1, Mode: opts.Mode, Phase: RenewPhaseRows, Table: t.table, After: fmt.Sprint(pr.LastKey)})
				},
			})
			apply(pr)
			if err != nil {
				report()
				return rep, fmt.Errorf("ormplugin: renew %s: %w", t.table, err)
			}
			if i+1 < len(targets) {
				if err := save(renewCursor{V: 1, Mode: opts.Mode, Phase: RenewPhaseRows, Table: targets[i+1].table}); err != nil {
					return rep, err
				}
			}
		}
	}
	rep.Phase, rep.Table, rep.Cursor = RenewPhaseDone, "", ""
	if opts.SaveCursor != nil && !opts.DryRun {
		if err := opts.SaveCursor(ctx, ""); err != nil {
			return rep, err
		}
	}
	report()
	return rep, nil
}

// countingReEncrypter counts ReEncrypt calls.
type countingReEncrypter struct {
	next ReEncrypter
	n    *int64
}

func (c countingReEncrypter) ReEncrypt(ctx context.Context, blob []byte, srcCtx map[string]string, dstKeyID string, dstCtx map[string]string) (*ReEncryptResult, error) {
	*c.n++
	return c.next.ReEncrypt(ctx, blob, srcCtx, dstKeyID, dstCtx)
}
