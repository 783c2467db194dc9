package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/kmsgo/kmsgo/server/audit"
	"github.com/kmsgo/kmsgo/starter/kmsclient"
)

func (a *app) configureCmd() *cobra.Command {
	var fromFile, akid, secret string
	var secretStdin bool
	cmd := &cobra.Command{
		Use:   "configure",
		Short: "Save endpoint and credentials as a profile (0600 file)",
		Long: `Save connection settings as a named profile (--profile, default "default") in
~/.config/kmsgo/credentials, a JSON file with mode 0600.

--from-file reads the admin-credentials.json that kmsd writes on its first start.
Pass a secret with --secret-stdin rather than --secret-access-key to keep it out of
shell history.`,
		Example: `  kmsctl configure --from-file .kmsgo-data/admin-credentials.json
  kmsctl configure --profile prod --endpoint https://kms.internal:8443 --access-key-id AKKMS... --secret-stdin < secret.txt`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path, err := a.credentialsPath()
			if err != nil {
				return err
			}
			cf, err := loadProfiles(path)
			if err != nil {
				return err
			}
			name := a.profileName()
			p := cf.Profiles[name]
			if fromFile != "" {
				bc, err := kmsclient.LoadCredentialsFile(fromFile)
				if err != nil {
					return fmt.Errorf("%s is not a kmsd credentials file: %w", fromFile, err)
				}
				p.AccessKeyID, p.SecretAccessKey, p.Region = bc.AccessKeyID, bc.SecretAccessKey, bc.Region
				if bc.Endpoint != "" {
					p.Endpoint = bc.Endpoint
				}
			}
			if akid != "" {
				p.AccessKeyID = akid
			}
			if secret != "" {
				p.SecretAccessKey = secret
			}
			if secretStdin {
				b, err := a.readInput(cmd, "", "-", false)
				if err != nil {
					return err
				}
				p.SecretAccessKey = strings.TrimSpace(string(b))
			}
			if !a.applyFlags(&p) {
				return errors.New("an access key id and secret are required (--from-file, or --access-key-id with --secret-stdin)")
			}
			cf.Profiles[name] = p
			if err := saveProfiles(path, cf); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "profile %q (%s, access key %s) saved to %s\n", name, p.Endpoint, p.AccessKeyID, path)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&fromFile, "from-file", "", "read access key id, secret and region from a kmsd credentials JSON file")
	f.StringVar(&akid, "access-key-id", "", "access key id")
	f.StringVar(&secret, "secret-access-key", "", "secret access key (prefer --secret-stdin)")
	f.BoolVar(&secretStdin, "secret-stdin", false, "read the secret access key from stdin")
	return cmd
}

func (a *app) printAccessKey(cmd *cobra.Command, k *kmsclient.AccessKey) error {
	return a.emit(cmd.OutOrStdout(), k, func(tw *tabwriter.Writer) {
		pol, _ := json.Marshal(k.Policy)
		ct := k.CreationDate
		fmt.Fprintf(tw, "Access key ID:\t%s\nStatus:\t%s\nDescription:\t%s\nCreated:\t%s\nPolicy:\t%s\n",
			k.AccessKeyID, k.Status, orDash(k.Description), fmtTime(&ct), pol)
		if k.SecretAccessKey != "" {
			fmt.Fprintf(tw, "Secret access key:\t%s\n", k.SecretAccessKey)
			fmt.Fprintln(tw, "\t(shown once: store it now)")
		}
		if k.IdempotentReplay {
			fmt.Fprintln(tw, "Idempotent replay:\tcreated earlier with this token; its secret was shown then (rotate-secret issues a new one)")
		}
	})
}

// readPolicy parses a policy given inline or as @file.
func readPolicy(s string) (kmsclient.Policy, error) {
	var p kmsclient.Policy
	b := []byte(s)
	if strings.HasPrefix(s, "@") {
		var err error
		if b, err = os.ReadFile(s[1:]); err != nil {
			return p, err
		}
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return p, fmt.Errorf("policy: %w", err)
	}
	return p, nil
}

func (a *app) accessKeysCmd() *cobra.Command {
	ak := &cobra.Command{
		Use:     "access-keys",
		Aliases: []string{"access-key", "ak"},
		Short:   "Issue and manage API access keys and their policies",
	}
	var desc, policy, token string
	var admin bool
	create := &cobra.Command{
		Use:   "create (--policy JSON|@file | --admin)",
		Short: "Create an access key; its secret is shown once",
		Example: `  kmsctl access-keys create --description orders-svc \
    --policy '{"statements":[{"effect":"Allow","actions":["kms:Decrypt","kms:GenerateDataKey*"],"resources":["alias/orders"]}]}'
  kmsctl access-keys create --admin --description "second admin"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var p kmsclient.Policy
			switch {
			case admin && policy != "":
				return errors.New("--admin and --policy exclude each other")
			case admin:
				p = kmsclient.AdminPolicy()
			case policy != "":
				var err error
				if p, err = readPolicy(policy); err != nil {
					return err
				}
			default:
				return errors.New("give --policy or --admin (access keys are deny-by-default)")
			}
			c, err := a.clientFor()
			if err != nil {
				return err
			}
			k, err := c.CreateAccessKeyWith(cmd.Context(), kmsclient.CreateAccessKeyInput{Description: desc, Policy: p, IdempotencyToken: token})
			if err != nil {
				return err
			}
			return a.printAccessKey(cmd, k)
		},
	}
	create.Flags().StringVar(&desc, "description", "", "free text")
	create.Flags().StringVar(&policy, "policy", "", "policy document as JSON, or @file")
	create.Flags().BoolVar(&admin, "admin", false, "allow everything")
	create.Flags().StringVar(&token, "idempotency-token", "", "re-running with the same token, description and policy answers the access key created before (without its secret) instead of a new one")

	list := &cobra.Command{
		Use:   "list",
		Short: "List access keys (never their secrets)",
		Args:  cobra.NoArgs,
		RunE: a.withClient(func(cmd *cobra.Command, c *kmsclient.Client, _ []string) error {
			ks, err := c.ListAccessKeys(cmd.Context())
			if err != nil {
				return err
			}
			if ks == nil {
				ks = []kmsclient.AccessKey{}
			}
			return a.emit(cmd.OutOrStdout(), ks, func(tw *tabwriter.Writer) {
				fmt.Fprintln(tw, "ACCESS KEY ID\tSTATUS\tCREATED\tDESCRIPTION")
				for _, k := range ks {
					ct := k.CreationDate
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", k.AccessKeyID, k.Status, fmtTime(&ct), orDash(k.Description))
				}
			})
		}),
	}
	op := func(use, short string, f func(c *kmsclient.Client, ctx context.Context, id string) (*kmsclient.AccessKey, error)) *cobra.Command {
		return &cobra.Command{
			Use: use + " ID", Short: short, Args: cobra.ExactArgs(1),
			RunE: a.withClient(func(cmd *cobra.Command, c *kmsclient.Client, args []string) error {
				k, err := f(c, cmd.Context(), args[0])
				if err != nil {
					return err
				}
				if k == nil {
					fmt.Fprintf(cmd.OutOrStdout(), "deleted %s\n", args[0])
					return nil
				}
				return a.printAccessKey(cmd, k)
			}),
		}
	}
	ak.AddCommand(create, list,
		op("describe", "Show an access key", (*kmsclient.Client).DescribeAccessKey),
		op("disable", "Disable an access key (refused by every replica within the auth cache TTL)", (*kmsclient.Client).DisableAccessKey),
		op("enable", "Enable a disabled access key", (*kmsclient.Client).EnableAccessKey),
		op("rotate-secret", "Issue a new secret for an access key (shown once)", (*kmsclient.Client).RotateAccessKeySecret),
		op("delete", "Delete an access key", func(c *kmsclient.Client, ctx context.Context, id string) (*kmsclient.AccessKey, error) {
			return nil, c.DeleteAccessKey(ctx, id)
		}),
	)
	return ak
}

type auditRecord struct {
	Time        time.Time `json:"time"`
	ReplicaID   string    `json:"replica_id"`
	Seq         int64     `json:"seq"`
	AccessKeyID string    `json:"access_key_id"`
	Action      string    `json:"action"`
	KeyID       string    `json:"key_id"`
	Result      string    `json:"result"`
	ReasonCode  string    `json:"reason_code"`
}

func (a *app) auditCmd() *cobra.Command {
	au := &cobra.Command{Use: "audit", Short: "Read and verify the tamper-evident audit log"}
	var limit int
	var after string
	var all bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List audit records, oldest first",
		Args:  cobra.NoArgs,
		RunE: a.withClient(func(cmd *cobra.Command, c *kmsclient.Client, _ []string) error {
			var recs []json.RawMessage
			next := after
			for {
				page, err := c.ListAudit(cmd.Context(), kmsclient.ListAuditInput{Limit: limit, After: next})
				if err != nil {
					return err
				}
				recs = append(recs, page.Records...)
				next = page.Next
				if !all || next == "" {
					break
				}
			}
			if recs == nil {
				recs = []json.RawMessage{}
			}
			js, err := a.jsonOut()
			if err != nil {
				return err
			}
			if js {
				return a.emit(cmd.OutOrStdout(), map[string]any{"records": recs, "next": next}, nil)
			}
			return a.emit(cmd.OutOrStdout(), nil, func(tw *tabwriter.Writer) {
				fmt.Fprintln(tw, "TIME\tREPLICA\tSEQ\tACCESS KEY\tACTION\tKEY\tRESULT")
				for _, raw := range recs {
					var r auditRecord
					if json.Unmarshal(raw, &r) != nil {
						continue
					}
					res := r.Result
					if r.ReasonCode != "" {
						res += " (" + r.ReasonCode + ")"
					}
					fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\n", r.Time.UTC().Format(time.RFC3339), r.ReplicaID, r.Seq,
						orDash(r.AccessKeyID), r.Action, orDash(r.KeyID), res)
				}
				if next != "" {
					fmt.Fprintf(tw, "(more: --after %s)\n", next)
				}
			})
		}),
	}
	list.Flags().IntVar(&limit, "limit", 100, "records per page")
	list.Flags().StringVar(&after, "after", "", "continue after this cursor")
	list.Flags().BoolVar(&all, "all", false, "follow pages until the end")

	var anchorsFile string
	var resume bool
	verify := &cobra.Command{
		Use:   "verify",
		Short: "Verify the audit hash chains; exits with status 2 at the first broken link",
		Long: "Verify the audit hash chains. With --anchors, also check them against saved anchors\n" +
			"(a copy of a replica's audit-anchors.jsonl, or of its \"audit anchor\" log lines as JSON):\n" +
			"an anchored record that is gone or changed, a truncated tail for instance, breaks the chain.",
		Args: cobra.NoArgs,
		RunE: a.withClient(func(cmd *cobra.Command, c *kmsclient.Client, _ []string) error {
			var anchors []kmsclient.AuditHead
			if anchorsFile != "" {
				f, err := os.Open(anchorsFile)
				if err != nil {
					return err
				}
				as, err := audit.ReadAnchors(f)
				f.Close()
				if err != nil {
					return err
				}
				for _, h := range audit.LatestHeads(as) {
					anchors = append(anchors, kmsclient.AuditHead{Replica: h.ReplicaID, Seq: h.Seq, Hash: h.Hash})
				}
			}
			res, err := c.VerifyAuditWith(cmd.Context(), kmsclient.VerifyAuditInput{Anchors: anchors, Resume: resume})
			if err != nil {
				return err
			}
			if err := a.emit(cmd.OutOrStdout(), res, func(tw *tabwriter.Writer) {
				if res.OK {
					fmt.Fprintf(tw, "OK: %d records verified, chains intact (%d anchors checked)\n", res.Checked, len(anchors))
					for _, h := range res.Heads {
						fmt.Fprintf(tw, "Head:\treplica %s, seq %d, hash %s\n", h.Replica, h.Seq, h.Hash)
					}
					if res.OutcomeUnknownCount > 0 {
						fmt.Fprintf(tw, "Outcome unknown: %d state changes have an intent record but no outcome (the change may or may not have been made)\n", res.OutcomeUnknownCount)
						for _, in := range res.OutcomeUnknown {
							fmt.Fprintf(tw, "Intent:\treplica %s, seq %d, %s %s key %q request %s: outcome unknown\n", in.Replica, in.Seq, in.Time.Format(time.RFC3339), in.Action, in.KeyID, in.RequestID)
						}
					}
					return
				}
				fmt.Fprintf(tw, "BROKEN after %d verified records\n", res.Checked)
				if b := res.FirstBroken; b != nil {
					fmt.Fprintf(tw, "First broken link:\treplica %s, seq %d: %s\n", b.Replica, b.Seq, b.Reason)
				}
			}); err != nil {
				return err
			}
			if !res.OK {
				msg := "audit chain broken"
				if b := res.FirstBroken; b != nil {
					msg = fmt.Sprintf("audit chain broken at replica %s seq %d: %s", b.Replica, b.Seq, b.Reason)
				}
				return &exitError{code: 2, err: errors.New(msg)}
			}
			return nil
		}),
	}
	verify.Flags().StringVar(&anchorsFile, "anchors", "", "file of saved anchors (JSON lines) to verify against")
	verify.Flags().BoolVar(&resume, "resume", false, "start from the server's last intact verification instead of reading every record")
	au.AddCommand(list, verify, a.auditExportCmd())
	return au
}

func (a *app) auditExportCmd() *cobra.Command {
	var dir string
	var replicas []string
	var limit int
	var noMark bool
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Write sealed, verifiable segments of the audit chains to files and mark them exported",
		Long: `Export the audit records not exported yet as sealed segment files in --dir, one file
per segment (audit-<replica>-<first seq>-<last seq>.jsonl, mode 0600): the records as JSON lines,
then a {"seal": ...} line signed by kmsd. The server verifies every record before it seals a
segment. Each file is synced to disk before the segment is marked exported on the server; only
exported records can be deleted by kmsd's audit.retention.`,
		Args: cobra.NoArgs,
		RunE: a.withClient(func(cmd *cobra.Command, c *kmsclient.Client, _ []string) error {
			ctx := cmd.Context()
			// Export up to the heads as of now: every request, this
			// command's own included, adds records.
			res, err := c.VerifyAuditWith(ctx, kmsclient.VerifyAuditInput{})
			if err != nil {
				return err
			}
			if !res.OK {
				return &exitError{code: 2, err: errors.New("audit chain broken; not exporting (run kmsctl audit verify)")}
			}
			upTo := map[string]int64{}
			for _, h := range res.Heads {
				upTo[h.Replica] = h.Seq
			}
			if len(replicas) == 0 {
				for _, h := range res.Heads {
					replicas = append(replicas, h.Replica)
				}
			}
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return err
			}
			files, records := 0, int64(0)
			for _, r := range replicas {
				after := int64(-1)
				for after < upTo[r] {
					n := limit
					if after >= 0 {
						n = int(min(int64(limit), upTo[r]-after))
					}
					seg, err := c.ExportAudit(ctx, r, after, n)
					if errors.Is(err, kmsclient.ErrNotFound) {
						break
					}
					if err != nil {
						return err
					}
					name := filepath.Join(dir, fmt.Sprintf("audit-%s-%d-%d.jsonl", safeName(r), seg.Seal.FirstSeq, seg.Seal.LastSeq))
					if err := writeSegment(name, seg); err != nil {
						return err
					}
					if !noMark {
						if err := c.MarkAuditExported(ctx, seg.Seal); err != nil {
							return err
						}
					}
					files++
					records += seg.Seal.Count
					fmt.Fprintf(cmd.OutOrStdout(), "%s\t%d records\n", name, seg.Seal.Count)
					after = seg.Seal.LastSeq
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "exported %d records in %d segments\n", records, files)
			return nil
		}),
	}
	cmd.Flags().StringVar(&dir, "dir", "", "directory for the segment files (required)")
	cmd.Flags().StringSliceVar(&replicas, "replica", nil, "replica chains to export (default: every chain)")
	cmd.Flags().IntVar(&limit, "limit", 10000, "records per segment (at most 10000)")
	cmd.Flags().BoolVar(&noMark, "no-mark", false, "write the files but do not mark the records exported")
	_ = cmd.MarkFlagRequired("dir")
	return cmd
}

// safeName keeps a replica id usable in a file name.
func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '-' || r == '_' || r == '.' || (r >= '0' && r <= '9') || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') {
			return r
		}
		return '_'
	}, s)
}

// writeSegment writes seg as a segment file (new, 0600) and syncs it.
func writeSegment(name string, seg *kmsclient.AuditSegment) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	for _, r := range seg.Records {
		buf.Write(r)
		buf.WriteByte('\n')
	}
	seal, err := json.Marshal(map[string]any{"seal": seg.Seal})
	if err != nil {
		f.Close()
		return err
	}
	buf.Write(seal)
	buf.WriteByte('\n')
	if _, err := f.Write(buf.Bytes()); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
