package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"gorm.io/driver/mysql"
	"gorm.io/driver/postgres"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/kmsgo/kmsgo/ormplugin"
)

// envORMDSN lets scripts pass the database DSN (which may hold a password)
// without putting it on the command line.
const envORMDSN = "KMS_ORM_DSN"

// ormFlags are the database flags shared by the orm subcommands.
type ormFlags struct {
	dsn    string
	driver string
}

func (a *app) ormCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "orm",
		Short: "Encrypt existing table columns and maintain the data keys of ormplugin",
		Long: `Maintenance commands for databases written through the GORM plugin ormplugin
(struct fields tagged gorm:"serializer:kms").

  migrate          encrypt a table's existing plaintext columns in place
  reencrypt        re-encrypt stored values under fresh data keys
  renew            run the renewal job once: re-wrap data keys not under the primary
                   master key version, optionally re-encrypt a table (leased, resumable)
  renew-data-keys  re-wrap the stored data keys under the newest master key version
  status           count stored data keys per master key version, or (with --table)
                   a table's plaintext values and data keys in use
  verify           decrypt every value of a table and list the rows that fail

The database is given by --driver (sqlite, mysql or postgres) and --dsn, or the
KMS_ORM_DSN environment variable (keeps a password off the command line). The
KMS connection uses the usual kmsctl profile, flags and environment. The plugin
keeps its wrapped keys in the tables kms_data_keys and kms_index_keys of the same
database (created on first use); back them up with the application data.
With SQLite, add ?_busy_timeout=5000 to the DSN when the application keeps running.`,
	}
	cmd.AddCommand(a.ormMigrateCmd(), a.ormReencryptCmd(), a.ormRenewCmd(), a.ormRenewJobCmd(), a.ormStatusCmd(), a.ormVerifyCmd())
	return cmd
}

func (f *ormFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.dsn, "dsn", "", "database DSN (default from "+envORMDSN+"); for sqlite a file path")
	cmd.Flags().StringVar(&f.driver, "driver", "sqlite", "database driver: sqlite, mysql or postgres")
}

// open connects to the database. GORM's SQL logging is off: statements
// carry plaintext values.
func (a *app) ormOpen(f *ormFlags) (*gorm.DB, error) {
	dsn := f.dsn
	if dsn == "" {
		dsn = a.getenv(envORMDSN)
	}
	if dsn == "" {
		return nil, fmt.Errorf("%w: --dsn (or %s) is required", errORMFlags, envORMDSN)
	}
	var d gorm.Dialector
	switch f.driver {
	case "sqlite":
		d = sqlite.Open(dsn)
	case "mysql", "mariadb":
		d = mysql.Open(dsn)
	case "postgres", "postgresql":
		d = postgres.Open(dsn)
	default:
		return nil, fmt.Errorf("%w: --driver %q (sqlite, mysql or postgres)", errORMFlags, f.driver)
	}
	db, err := gorm.Open(d, &gorm.Config{Logger: logger.Discard})
	if err != nil {
		// Drivers may echo the DSN (and its password): keep only the type.
		return nil, fmt.Errorf("open %s database: %w", f.driver, redactDSN(err, dsn))
	}
	return db, nil
}

// redactDSN removes the DSN from a driver error.
func redactDSN(err error, dsn string) error {
	msg := err.Error()
	if dsn != "" && strings.Contains(msg, dsn) {
		return errors.New(strings.ReplaceAll(msg, dsn, "<dsn>"))
	}
	return err
}

func closeDB(db *gorm.DB) {
	if s, err := db.DB(); err == nil {
		_ = s.Close()
	}
}

// withPlugin connects to the database and registers an ormplugin for keyID.
func (a *app) withPlugin(f *ormFlags, keyID string, fn func(db *gorm.DB, p *ormplugin.Plugin) error) error {
	if keyID == "" {
		return fmt.Errorf("%w: --key-id is required", errORMFlags)
	}
	client, err := a.clientFor()
	if err != nil {
		return err
	}
	db, err := a.ormOpen(f)
	if err != nil {
		return err
	}
	defer closeDB(db)
	p := ormplugin.New(client, ormplugin.Config{KeyID: keyID})
	if err := db.Use(p); err != nil {
		return err
	}
	return fn(db, p)
}

// tableFlags describe the table of migrate and reencrypt.
type tableFlags struct {
	table     string
	pk        string
	stringPK  bool
	columns   []string
	keyID     string
	batchSize int
	older     int           // --older-than-version, reencrypt only
	keepKeys  bool          // --keep-keys, reencrypt only
	keyGrace  time.Duration // --key-grace, reencrypt only
}

func (t *tableFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&t.table, "table", "", "table to rewrite (required)")
	t.registerColumns(cmd)
	fl.StringVar(&t.keyID, "key-id", "", "master key (id or alias) that wraps new data keys, as in the application's ormplugin.Config.KeyID (required)")
	fl.IntVar(&t.batchSize, "batch-size", ormplugin.DefaultBatchSize, "rows read and written per transaction")
}

// registerColumns registers the flags that describe the table's model.
func (t *tableFlags) registerColumns(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&t.pk, "pk", "id", "single-column primary key")
	fl.BoolVar(&t.stringPK, "string-pk", false, "the primary key is a string column (default: integer)")
	fl.StringArrayVar(&t.columns, "column", nil, "encrypted column as name[:type][:index=col][:bind=col], type string (default), bytes or json; repeatable (required)")
}

func (t *tableFlags) spec() (ormplugin.TableSpec, error) {
	if t.table == "" || len(t.columns) == 0 {
		return ormplugin.TableSpec{}, fmt.Errorf("%w: --table and at least one --column are required", errORMFlags)
	}
	if t.batchSize <= 0 {
		return ormplugin.TableSpec{}, fmt.Errorf("%w: --batch-size must be positive", errORMFlags)
	}
	spec := ormplugin.TableSpec{Table: t.table, PrimaryKey: t.pk, StringKey: t.stringPK}
	for _, c := range t.columns {
		cs, err := parseColumnSpec(c)
		if err != nil {
			return spec, err
		}
		spec.Columns = append(spec.Columns, cs)
	}
	if t.older < 0 {
		return spec, fmt.Errorf("%w: --older-than-version must not be negative", errORMFlags)
	}
	return spec, nil
}

// parseColumnSpec parses name[:type][:index=col][:bind=col] (the parts
// after the name in any order).
func parseColumnSpec(s string) (ormplugin.ColumnSpec, error) {
	parts := strings.Split(s, ":")
	cs := ormplugin.ColumnSpec{Name: strings.TrimSpace(parts[0])}
	if cs.Name == "" || strings.Contains(cs.Name, "=") {
		return cs, fmt.Errorf("%w: --column %q: want name[:type][:index=col][:bind=col]", errORMFlags, s)
	}
	var typeSet, indexSet, bindSet bool
	for _, p := range parts[1:] {
		p = strings.TrimSpace(p)
		if k, v, ok := strings.Cut(p, "="); ok {
			switch {
			case k == "index" && v != "" && !indexSet:
				cs.Index, indexSet = v, true
			case k == "bind" && v != "" && !bindSet:
				cs.Bind, bindSet = v, true
			default:
				return cs, fmt.Errorf("%w: --column %q: bad option %q", errORMFlags, s, p)
			}
			continue
		}
		switch p {
		case ormplugin.TypeString, ormplugin.TypeBytes, ormplugin.TypeJSON:
			if typeSet {
				return cs, fmt.Errorf("%w: --column %q: two types", errORMFlags, s)
			}
			cs.Type, typeSet = p, true
		default:
			return cs, fmt.Errorf("%w: --column %q: unknown type %q (string, bytes or json)", errORMFlags, s, p)
		}
	}
	if cs.Type == "" {
		cs.Type = ormplugin.TypeString
	}
	return cs, nil
}

// progressPrinter writes one line per batch of each phase, saying what
// was written rather than only what was read:
//
//	checking 500/10000 rows (5%): 480 plaintext values to encrypt
//	encrypting 500/10000 rows (5%): 480 plaintext values found, 480 encrypted
//	verifying 10000/10000 rows (100%): 0 plaintext values left
func progressPrinter(w io.Writer, migrate bool) func(ormplugin.Progress) {
	return func(p ormplugin.Progress) {
		pct := int64(100)
		if p.Total > 0 {
			pct = min(100, p.Scanned*100/p.Total)
		}
		rows := fmt.Sprintf("%d/%d rows (%d%%)", p.Scanned, p.Total, pct)
		switch {
		case p.Phase == ormplugin.PhaseCheck:
			fmt.Fprintf(w, "checking %s: %d plaintext values to encrypt\n", rows, p.Found)
		case p.Phase == ormplugin.PhaseVerify:
			fmt.Fprintf(w, "verifying %s: %d plaintext values found and encrypted, %d encrypted in all\n", rows, p.Found, p.Rewritten)
		case p.Phase == ormplugin.PhasePrune:
			fmt.Fprintf(w, "deleted %d data keys no value references\n", p.KeysDeleted)
		case migrate:
			fmt.Fprintf(w, "encrypting %s: %d plaintext values found, %d encrypted\n", rows, p.Found, p.Rewritten)
		default:
			fmt.Fprintf(w, "re-encrypting %s: %d values under retired keys found, %d re-encrypted\n", rows, p.Found, p.Rewritten)
		}
	}
}

// rewriteResult is what migrate and reencrypt print.
type rewriteResult struct {
	Table              string `json:"table"`
	RowsTotal          int64  `json:"rows_total"`
	RowsScanned        int64  `json:"rows_scanned"`
	ValuesWritten      int64  `json:"values_written"`
	RowsRetried        int64  `json:"rows_retried"`
	PlaintextRemaining int64  `json:"plaintext_remaining"`
	Undecryptable      int64  `json:"undecryptable"`
	KeysDeleted        int64  `json:"keys_deleted"`
}

func (a *app) emitRewrite(w io.Writer, p ormplugin.Progress, migrate bool) error {
	r := rewriteResult{Table: p.Table, RowsTotal: p.Total, RowsScanned: p.Scanned, ValuesWritten: p.Rewritten,
		RowsRetried: p.Retried, Undecryptable: p.Undecryptable, KeysDeleted: p.KeysDeleted}
	if migrate {
		r.PlaintextRemaining = p.Remaining
	}
	return a.emit(w, r, func(tw *tabwriter.Writer) {
		fmt.Fprintln(tw, "TABLE\tROWS\tVALUES WRITTEN\tROWS RETRIED\tPLAINTEXT LEFT\tUNDECRYPTABLE\tKEYS DELETED")
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\n", r.Table, r.RowsTotal, r.ValuesWritten, r.RowsRetried, r.PlaintextRemaining, r.Undecryptable, r.KeysDeleted)
	})
}

func (a *app) ormMigrateCmd() *cobra.Command {
	var f ormFlags
	var t tableFlags
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Encrypt a table's existing plaintext columns in place",
		Long: `migrate encrypts, in place, the plaintext values of the given columns, in the
same format the application's ormplugin writes, and fills their blind index
columns. Describe the columns as the application's model does: a string field is
"string" (the default), a []byte field "bytes", any other (JSON) field "json";
add index=<column> for a field tagged kms:"index=...".

Before writing anything it reads the whole table and fails if a value does not
decode as its type or if a column is too small for its ciphertext (ciphertext
length = 5 + ceil(4*(n+36)/3) for n plaintext bytes): widen the column first.
Then it works in batches of --batch-size rows, one transaction each, and prints
its progress to stderr. A row the application changed between read and update
is read again and retried; a last pass (verifying) encrypts whatever writers
left. A value counts as encrypted only if it decrypts, so plaintext that merely
starts like ciphertext is encrypted too. Values already encrypted are skipped, so
an interrupted run (Ctrl-C, crash, error) is resumed by running the same command
again, and a second run writes nothing.

The exit status is 0 only when no plaintext is left: if writers kept changing
rows (or an application without the plugin writes plaintext) it exits 1 with the
count; run it again, and check with "kmsctl orm status --table ...". While it
runs, application readers need ormplugin.Config{AllowPlaintextReads: true}; turn
that off once status shows no plaintext.

Columns bound to their row (kms:"bind=col" in the model) take :bind=col.`,
		Example: `  # widen the columns first if needed, then:
  export KMS_ORM_DSN='app:secret@tcp(db:3306)/shop?parseTime=true'
  kmsctl orm migrate --driver mysql --table users --key-id alias/orders \
      --column email:string:index=email_bidx --column phone --column profile:json
  # progress on stderr:
  #   checking 10000/10000 rows (100%): 19833 plaintext values to encrypt
  #   encrypting 1500/10000 rows (15%): 2980 plaintext values found, 2980 encrypted
  #   verifying 10000/10000 rows (100%): 0 plaintext values found and encrypted, 19833 encrypted in all
  kmsctl orm status --driver mysql --table users --column email:string:index=email_bidx --column phone --column profile:json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.rewrite(cmd, &f, &t, "migrate", (*ormplugin.Plugin).MigrateTable)
		},
	}
	f.register(cmd)
	t.register(cmd)
	return cmd
}

// rewrite runs migrate or reencrypt (run) over the table of t and prints
// the result; what names the command in resume hints.
func (a *app) rewrite(cmd *cobra.Command, f *ormFlags, t *tableFlags, what string,
	run func(*ormplugin.Plugin, context.Context, *gorm.DB, ormplugin.TableSpec, ormplugin.RewriteOptions) (ormplugin.Progress, error)) error {
	spec, err := t.spec()
	if err != nil {
		return err
	}
	return a.withPlugin(f, t.keyID, func(db *gorm.DB, p *ormplugin.Plugin) error {
		migrate := what == "migrate"
		prog, err := run(p, cmd.Context(), db, spec, ormplugin.RewriteOptions{
			BatchSize: t.batchSize, OlderThanVersion: t.older, KeepKeys: t.keepKeys, KeyGrace: t.keyGrace,
			Progress: progressPrinter(cmd.ErrOrStderr(), migrate)})
		if errors.Is(err, ormplugin.ErrPlaintextRemains) {
			if eerr := a.emitRewrite(cmd.OutOrStdout(), prog, migrate); eerr != nil {
				return eerr
			}
			return err
		}
		if err != nil {
			return interrupted(err, prog, what)
		}
		if prog.Undecryptable > 0 {
			fmt.Fprintf(cmd.ErrOrStderr(), "warning: %d values look like ciphertext but do not decrypt; list them with kmsctl orm verify\n", prog.Undecryptable)
		}
		return a.emitRewrite(cmd.OutOrStdout(), prog, migrate)
	})
}

// interrupted explains how to resume after an error midway.
func interrupted(err error, p ormplugin.Progress, what string) error {
	if p.Scanned > 0 || errors.Is(err, context.Canceled) {
		return fmt.Errorf("%w (stopped after %d/%d rows; run the same %s command again to resume)", err, p.Scanned, p.Total, what)
	}
	return err
}

func (a *app) ormReencryptCmd() *cobra.Command {
	var f ormFlags
	var t tableFlags
	cmd := &cobra.Command{
		Use:   "reencrypt",
		Short: "Re-encrypt a table's encrypted columns under fresh data keys",
		Long: `reencrypt decrypts the stored values of the given columns and encrypts them again
under fresh data keys: all of them, or with --older-than-version N only those whose
data key was generated under a master key version below N (renew-data-keys re-wraps
a data key under the newest version but does not change the key, so it still counts
as generated under its old version). Use it when a data key must be retired; after
a plain master key rotation, renew-data-keys is usually enough and rewrites no row.
Batched, resumable and safe to rerun, like migrate.

Afterwards it deletes the columns' data key rows that no value of the table
references any more and that are older than --key-grace (default: the plugin's
MaxKeyAge plus 10 minutes, during which other processes may still encrypt under
them); --keep-keys keeps them, for example when ciphertexts of this table are
copied into other tables.`,
		Example: `  kmsctl orm reencrypt --dsn ./app.db --table users --key-id alias/orders \
      --column email:string:index=email_bidx --older-than-version 3`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.rewrite(cmd, &f, &t, "reencrypt", (*ormplugin.Plugin).ReencryptTable)
		},
	}
	f.register(cmd)
	t.register(cmd)
	cmd.Flags().IntVar(&t.older, "older-than-version", 0, "only values whose data key was generated under a master key version below this (0: all values)")
	cmd.Flags().BoolVar(&t.keepKeys, "keep-keys", false, "keep data key rows no value references any more")
	cmd.Flags().DurationVar(&t.keyGrace, "key-grace", 0, "delete unreferenced data key rows only when older than this (default: MaxKeyAge + 10m)")
	return cmd
}

func (a *app) ormRenewCmd() *cobra.Command {
	var f ormFlags
	var dst string
	var batch int
	cmd := &cobra.Command{
		Use:   "renew-data-keys",
		Short: "Re-wrap stored data keys under the newest master key version",
		Long: `renew-data-keys sends every wrapped key in kms_data_keys and kms_index_keys to
kmsd's ReEncrypt, which re-wraps it under the newest version of its master key
(or under --destination-key-id). The data keys themselves do not change, so no
table row is rewritten. Run it after a master key rotation; once "kmsctl orm
status" shows no keys under an old version, that version may be retired.`,
		Example: `  kmsctl keys rotate alias/orders
  kmsctl orm renew-data-keys --driver postgres --dsn 'postgres://app@db/shop'
  kmsctl orm status --driver postgres --dsn 'postgres://app@db/shop'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if batch <= 0 {
				return fmt.Errorf("%w: --batch-size must be positive", errORMFlags)
			}
			client, err := a.clientFor()
			if err != nil {
				return err
			}
			db, err := a.ormOpen(&f)
			if err != nil {
				return err
			}
			defer closeDB(db)
			stderr := cmd.ErrOrStderr()
			prog, err := ormplugin.RenewDataKeys(cmd.Context(), db, client, ormplugin.RenewOptions{
				DestinationKeyID: dst, BatchSize: batch,
				Progress: func(p ormplugin.RenewProgress) {
					fmt.Fprintf(stderr, "checked %d keys, re-wrapped %d\n", p.Checked, p.Rewrapped)
				}})
			if err != nil {
				return fmt.Errorf("%w (checked %d keys; safe to run again)", err, prog.Checked)
			}
			out := struct {
				Checked   int64 `json:"checked"`
				Rewrapped int64 `json:"rewrapped"`
			}{prog.Checked, prog.Rewrapped}
			return a.emit(cmd.OutOrStdout(), out, func(tw *tabwriter.Writer) {
				fmt.Fprintln(tw, "CHECKED\tRE-WRAPPED")
				fmt.Fprintf(tw, "%d\t%d\n", out.Checked, out.Rewrapped)
			})
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&dst, "destination-key-id", "", "re-wrap under this master key instead of each key's own")
	cmd.Flags().IntVar(&batch, "batch-size", ormplugin.DefaultBatchSize, "key rows read at a time")
	return cmd
}

func (a *app) ormStatusCmd() *cobra.Command {
	var f ormFlags
	var t tableFlags
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Count data keys per master key version, or a table's plaintext values and keys in use",
		Long: `Without --table, status lists per master key and version how many stored data key
rows and blind index keys (tables kms_data_keys and kms_index_keys) it wraps. An old
version that no longer appears is referenced by no stored key.

With --table and the --column flags of migrate, it reads the table and prints per
encrypted column the non-NULL values, the plaintext values still there (values that
are not well-formed ciphertext naming a data key of the column), the data keys the
values reference and the data key rows stored. When every PLAINTEXT count is 0 the
migration is complete and applications may turn AllowPlaintextReads off.

status needs no KMS credentials, so it does not decrypt: "kmsctl orm verify" does,
and lists the rows that fail.`,
		Example: `  kmsctl orm status --dsn ./app.db -o json
  kmsctl orm status --dsn ./app.db --table users --column email:string:index=email_bidx --column phone`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var spec ormplugin.TableSpec
			if t.table != "" || len(t.columns) > 0 {
				t.batchSize = ormplugin.DefaultBatchSize
				var err error
				if spec, err = t.spec(); err != nil {
					return err
				}
			}
			db, err := a.ormOpen(&f)
			if err != nil {
				return err
			}
			defer closeDB(db)
			if spec.Table != "" {
				return a.tableStatus(cmd, db, spec)
			}
			if !db.Migrator().HasTable(ormplugin.DataKeyTable) {
				return fmt.Errorf("%w: no table %s in this database (ormplugin never ran here)", errORMFlags, ormplugin.DataKeyTable)
			}
			vs, err := ormplugin.DataKeyVersions(cmd.Context(), db)
			if err != nil {
				return err
			}
			type row struct {
				KeyID      string `json:"key_id"`
				KeyVersion int    `json:"key_version"`
				Keys       int64  `json:"keys"`
			}
			rows := make([]row, 0, len(vs))
			for _, v := range vs {
				rows = append(rows, row{v.KeyID, v.KeyVersion, v.Keys})
			}
			return a.emit(cmd.OutOrStdout(), rows, func(tw *tabwriter.Writer) {
				fmt.Fprintln(tw, "KEY ID\tVERSION\tKEY ROWS")
				for _, r := range rows {
					fmt.Fprintf(tw, "%s\t%d\t%d\n", r.KeyID, r.KeyVersion, r.Keys)
				}
			})
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&t.table, "table", "", "report on this table (with --column)")
	t.registerColumns(cmd)
	return cmd
}

// tableStatus prints ormplugin.TableStatus.
func (a *app) tableStatus(cmd *cobra.Command, db *gorm.DB, spec ormplugin.TableSpec) error {
	cols, err := ormplugin.TableStatus(cmd.Context(), db, spec)
	if err != nil {
		return err
	}
	type row struct {
		Table     string `json:"table"`
		Column    string `json:"column"`
		Values    int64  `json:"values"`
		Plaintext int64  `json:"plaintext"`
		KeysInUse int64  `json:"keys_in_use"`
		KeyRows   int64  `json:"key_rows"`
	}
	rows := make([]row, 0, len(cols))
	var plain int64
	for _, c := range cols {
		rows = append(rows, row{spec.Table, c.Column, c.Values, c.Plaintext, c.KeysInUse, c.KeyRows})
		plain += c.Plaintext
	}
	err = a.emit(cmd.OutOrStdout(), rows, func(tw *tabwriter.Writer) {
		fmt.Fprintln(tw, "TABLE\tCOLUMN\tVALUES\tPLAINTEXT\tKEYS IN USE\tKEY ROWS")
		for _, r := range rows {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\n", r.Table, r.Column, r.Values, r.Plaintext, r.KeysInUse, r.KeyRows)
		}
	})
	if err == nil {
		if plain > 0 {
			fmt.Fprintf(cmd.ErrOrStderr(), "%d plaintext values left in %s: keep AllowPlaintextReads on and run kmsctl orm migrate\n", plain, spec.Table)
		} else {
			fmt.Fprintf(cmd.ErrOrStderr(), "no plaintext left in %s\n", spec.Table)
		}
	}
	return err
}

func (a *app) ormVerifyCmd() *cobra.Command {
	var f ormFlags
	var t tableFlags
	cmd := &cobra.Command{
		Use:   "verify TABLE",
		Short: "Decrypt every value of a table and list the rows that fail",
		Long: `verify reads every value of the given encrypted columns, decrypts it (through kmsd,
one call per data key) and lists each value that cannot be read, by primary key,
column and problem, never by value:

  plaintext      not ciphertext: migrate has not reached it, or a writer without
                 the plugin wrote it
  undecryptable  names a data key of the column but does not authenticate: tampered,
                 corrupted, or copied from another row of a row-bound column
  bind-missing   a row-bound value whose bound column is empty

A DecryptError of the application names one row; verify finds all of them. It
writes nothing and exits 1 when it lists any row.`,
		Example: `  kmsctl orm verify users --dsn ./app.db --key-id alias/orders \
      --column email:string:index=email_bidx --column phone --column profile:json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				if t.table != "" && t.table != args[0] {
					return fmt.Errorf("%w: two tables given", errORMFlags)
				}
				t.table = args[0]
			}
			spec, err := t.spec()
			if err != nil {
				return err
			}
			return a.withPlugin(&f, t.keyID, func(db *gorm.DB, p *ormplugin.Plugin) error {
				type bad struct {
					PrimaryKey any    `json:"primary_key"`
					Column     string `json:"column"`
					Problem    string `json:"problem"`
				}
				bads := []bad{}
				res, err := p.VerifyTable(cmd.Context(), db, spec, ormplugin.VerifyOptions{
					BatchSize: t.batchSize,
					Report:    func(b ormplugin.BadValue) { bads = append(bads, bad{b.PrimaryKey, b.Column, b.Problem}) },
				})
				if err != nil {
					return err
				}
				out := struct {
					Table         string `json:"table"`
					Rows          int64  `json:"rows"`
					Values        int64  `json:"values"`
					Plaintext     int64  `json:"plaintext"`
					Undecryptable int64  `json:"undecryptable"`
					Bad           []bad  `json:"bad"`
				}{res.Table, res.Rows, res.Values, res.Plaintext, res.Undecryptable, bads}
				if err := a.emit(cmd.OutOrStdout(), out, func(tw *tabwriter.Writer) {
					fmt.Fprintln(tw, "PRIMARY KEY\tCOLUMN\tPROBLEM")
					for _, b := range bads {
						fmt.Fprintf(tw, "%v\t%s\t%s\n", b.PrimaryKey, b.Column, b.Problem)
					}
				}); err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "%s: %d rows, %d values, %d plaintext, %d undecryptable\n", res.Table, res.Rows, res.Values, res.Plaintext, res.Undecryptable)
				if res.Bad() > 0 {
					return fmt.Errorf("%d values of %s cannot be read", res.Bad(), res.Table)
				}
				return nil
			})
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&t.table, "table", "", "table to verify (or the TABLE argument)")
	t.registerColumns(cmd)
	cmd.Flags().StringVar(&t.keyID, "key-id", "", "master key (id or alias) of the application's ormplugin.Config.KeyID (required)")
	cmd.Flags().IntVar(&t.batchSize, "batch-size", ormplugin.DefaultBatchSize, "rows read at a time")
	return cmd
}
