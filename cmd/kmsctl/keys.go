package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/kmsgo/kmsgo/starter/kmsclient"
)

// resolveKey turns a key id or alias name into a key id where kmsclient
// does not: a key_id query filter, an alias target, and commands that make
// several calls on one key (resolved once, so every call hits the same key).
// Key path arguments need no resolving: kmsclient resolves aliases itself.
func (a *app) resolveKey(ctx context.Context, c *kmsclient.Client, ref string) (string, error) {
	if !strings.HasPrefix(ref, "alias/") {
		return ref, nil
	}
	al, err := c.GetAlias(ctx, ref)
	if err != nil {
		return "", err
	}
	return al.KeyID, nil
}

func fmtTime(t *time.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func fmtTags(m map[string]string) string {
	if len(m) == 0 {
		return "-"
	}
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	for i, k := range ks {
		ks[i] = k + "=" + m[k]
	}
	return strings.Join(ks, ",")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (a *app) printKey(cmd *cobra.Command, md *kmsclient.KeyMetadata) error {
	return a.emit(cmd.OutOrStdout(), md, func(tw *tabwriter.Writer) {
		rot := "disabled"
		if md.Rotation.Enabled {
			rot = fmt.Sprintf("every %d days, next %s", md.Rotation.PeriodDays, fmtTime(md.Rotation.NextRotationAt))
		}
		ct := md.CreationDate
		for _, row := range [][2]string{
			{"Key ID", md.KeyID}, {"State", string(md.KeyState)}, {"Description", orDash(md.Description)},
			{"Spec", string(md.KeySpec)}, {"Protection", string(md.ProtectionLevel)}, {"Origin", string(md.Origin)},
			{"Primary version", fmt.Sprint(md.PrimaryVersion)}, {"Aliases", orDash(strings.Join(md.Aliases, ","))},
			{"Tags", fmtTags(md.Tags)}, {"Created", fmtTime(&ct)}, {"Deletion date", fmtTime(md.DeletionDate)},
			{"Rotation", rot},
		} {
			fmt.Fprintf(tw, "%s:\t%s\n", row[0], row[1])
		}
	})
}

func (a *app) keysCmd() *cobra.Command {
	keys := &cobra.Command{
		Use:   "keys",
		Short: "Create and manage master keys",
		Long: `Create and manage master keys (CMKs). Wherever a KEY argument is taken, a key id or an
alias name ("alias/orders") may be given.`,
	}
	keys.AddCommand(a.keysCreate(), a.keysList(), a.keysDescribe(),
		a.keyOp("enable", "Enable a disabled key", (*kmsclient.Client).EnableKey),
		a.keyOp("disable", "Disable a key: it refuses every cryptographic operation until enabled", (*kmsclient.Client).DisableKey),
		a.keyOp("rotate", "Add a new primary key version now (old data still decrypts)", (*kmsclient.Client).RotateKey),
		a.keyOp("cancel-deletion", "Cancel a scheduled deletion (the key becomes Disabled)", (*kmsclient.Client).CancelKeyDeletion),
		a.keysScheduleDeletion(), a.keysAlias(), a.keysAliases(), a.keysTag(), a.keysImport(), a.keysVersions(),
		a.keysDisableVersion(), a.keysEnableVersion(), a.keysRotationPolicy())
	return keys
}

func (a *app) keysCreate() *cobra.Command {
	var in kmsclient.CreateKeyInput
	var tags []string
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create a master key",
		Example: `  kmsctl keys create --alias alias/orders --description "order PII"
  kmsctl keys create --protection HSM --tag team=pay
  kmsctl keys create --origin EXTERNAL     # then: kmsctl keys import KEY --material-file key.bin
  kmsctl keys create --alias alias/billing --idempotency-token deploy-42-billing  # safe to re-run`,
		Args: cobra.NoArgs,
		RunE: a.withClient(func(cmd *cobra.Command, c *kmsclient.Client, _ []string) error {
			var err error
			if in.Tags, err = parsePairs(tags, "tag"); err != nil {
				return err
			}
			md, err := c.CreateKey(cmd.Context(), in)
			if err != nil {
				return err
			}
			return a.printKey(cmd, md)
		}),
	}
	f := cmd.Flags()
	f.StringVar(&in.Description, "description", "", "free text")
	f.StringVar((*string)(&in.KeySpec), "spec", "", "AES_256 (default) or AES_128 (imported keys only)")
	f.StringVar((*string)(&in.ProtectionLevel), "protection", "", "SOFTWARE (default: material wrapped by the HSM, fast) or HSM (every operation in the HSM)")
	f.StringVar((*string)(&in.Origin), "origin", "", "KMS (default) or EXTERNAL (bring your own key material)")
	f.StringVar(&in.Alias, "alias", "", "alias to create with the key, e.g. alias/orders")
	f.StringArrayVar(&tags, "tag", nil, "tag key=value (repeatable)")
	f.StringVar(&in.IdempotencyToken, "idempotency-token", "", "1-64 characters [A-Za-z0-9-_.:]; re-running with the same token and flags answers the key created before instead of a new one (default: a random token per run)")
	return cmd
}

func (a *app) keysList() *cobra.Command {
	var in kmsclient.ListKeysInput
	var all bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List master keys",
		Args:  cobra.NoArgs,
		RunE: a.withClient(func(cmd *cobra.Command, c *kmsclient.Client, _ []string) error {
			var keys []kmsclient.KeyMetadata
			for {
				out, err := c.ListKeys(cmd.Context(), in)
				if err != nil {
					return err
				}
				keys = append(keys, out.Keys...)
				if !all || out.NextMarker == "" {
					break
				}
				in.Marker = out.NextMarker
			}
			if keys == nil {
				keys = []kmsclient.KeyMetadata{}
			}
			return a.emit(cmd.OutOrStdout(), keys, func(tw *tabwriter.Writer) {
				fmt.Fprintln(tw, "KEY ID\tSTATE\tPROTECTION\tVERSION\tALIASES\tDESCRIPTION")
				for _, k := range keys {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", k.KeyID, k.KeyState, k.ProtectionLevel, k.PrimaryVersion,
						orDash(strings.Join(k.Aliases, ",")), orDash(k.Description))
				}
			})
		}),
	}
	f := cmd.Flags()
	f.StringVar((*string)(&in.State), "state", "", "only keys in this state (Enabled, Disabled, PendingDeletion, PendingImport)")
	f.StringVar(&in.Alias, "alias", "", "only the key with this alias")
	f.StringVar(&in.Tag, "tag", "", "only keys with this tag, key:value")
	f.IntVar(&in.Limit, "limit", 100, "page size")
	f.BoolVar(&all, "all", true, "follow pages until the end")
	return cmd
}

// withClient returns a RunE that connects to kmsd and then calls run.
func (a *app) withClient(run func(cmd *cobra.Command, c *kmsclient.Client, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		c, err := a.clientFor()
		if err != nil {
			return err
		}
		return run(cmd, c, args)
	}
}

// keyCmd completes cmd as a command on one KEY argument (a key id or an
// alias name, which kmsclient resolves): it connects, calls call and prints
// the result with print. cmd brings the name, help texts and flags.
func keyCmd[T any](a *app, cmd *cobra.Command, call func(c *kmsclient.Client, ctx context.Context, key string) (T, error),
	print func(cmd *cobra.Command, v T) error) *cobra.Command {
	cmd.Args = cobra.ExactArgs(1)
	cmd.RunE = a.withClient(func(cmd *cobra.Command, c *kmsclient.Client, args []string) error {
		v, err := call(c, cmd.Context(), args[0])
		if err != nil {
			return err
		}
		return print(cmd, v)
	})
	return cmd
}

func (a *app) keysDescribe() *cobra.Command {
	return a.keyOp("describe", "Show a key's metadata", (*kmsclient.Client).DescribeKey)
}

func (a *app) keyOp(name, short string, op func(*kmsclient.Client, context.Context, string) (*kmsclient.KeyMetadata, error)) *cobra.Command {
	return keyCmd(a, &cobra.Command{Use: name + " KEY", Short: short}, op, a.printKey)
}

func (a *app) keysScheduleDeletion() *cobra.Command {
	var days int
	cmd := keyCmd(a, &cobra.Command{
		Use:   "schedule-deletion KEY",
		Short: "Schedule a key's destruction after a waiting period (7-30 days, cancelable)",
		Long: `Schedule a key's destruction. The key refuses all cryptographic operations at once; after
the waiting period its material is destroyed and data encrypted under it can never be
decrypted again. Use cancel-deletion within the window to keep it.`,
	}, func(c *kmsclient.Client, ctx context.Context, key string) (*kmsclient.KeyMetadata, error) {
		return c.ScheduleKeyDeletion(ctx, key, days)
	}, a.printKey)
	cmd.Flags().IntVar(&days, "days", 30, "waiting period in days (7-30)")
	return cmd
}

func (a *app) keysAlias() *cobra.Command {
	var update, del bool
	cmd := &cobra.Command{
		Use:   "alias ALIAS [KEY]",
		Short: "Create, repoint (--update) or delete (--delete) an alias",
		Example: `  kmsctl keys alias alias/orders 9f1c...            # create
  kmsctl keys alias alias/orders 7d2e... --update   # point at another key
  kmsctl keys alias alias/orders --delete`,
		Args: cobra.RangeArgs(1, 2),
		RunE: a.withClient(func(cmd *cobra.Command, c *kmsclient.Client, args []string) error {
			ctx := cmd.Context()
			name := args[0]
			if !strings.HasPrefix(name, "alias/") {
				name = "alias/" + name
			}
			if del {
				if len(args) != 1 {
					return errors.New("--delete takes only the alias name")
				}
				if err := c.DeleteAlias(ctx, name); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "deleted %s\n", name)
				return nil
			}
			if len(args) != 2 {
				return errors.New("give the alias name and the key")
			}
			id, err := a.resolveKey(ctx, c, args[1])
			if err != nil {
				return err
			}
			var al *kmsclient.Alias
			if update {
				al, err = c.UpdateAlias(ctx, name, id)
			} else {
				al, err = c.CreateAlias(ctx, name, id)
			}
			if err != nil {
				return err
			}
			return a.emit(cmd.OutOrStdout(), al, func(tw *tabwriter.Writer) {
				fmt.Fprintf(tw, "%s\t->\t%s\n", al.AliasName, al.KeyID)
			})
		}),
	}
	cmd.Flags().BoolVar(&update, "update", false, "point an existing alias at KEY")
	cmd.Flags().BoolVar(&del, "delete", false, "delete the alias")
	return cmd
}

func (a *app) keysAliases() *cobra.Command {
	return &cobra.Command{
		Use:   "aliases [KEY]",
		Short: "List aliases (of one key when KEY is given)",
		Args:  cobra.MaximumNArgs(1),
		RunE: a.withClient(func(cmd *cobra.Command, c *kmsclient.Client, args []string) error {
			var id string
			var err error
			if len(args) == 1 {
				if id, err = a.resolveKey(cmd.Context(), c, args[0]); err != nil {
					return err
				}
			}
			as, err := c.ListAliases(cmd.Context(), id)
			if err != nil {
				return err
			}
			if as == nil {
				as = []kmsclient.Alias{}
			}
			return a.emit(cmd.OutOrStdout(), as, func(tw *tabwriter.Writer) {
				fmt.Fprintln(tw, "ALIAS\tKEY ID")
				for _, al := range as {
					fmt.Fprintf(tw, "%s\t%s\n", al.AliasName, al.KeyID)
				}
			})
		}),
	}
}

func (a *app) keysTag() *cobra.Command {
	var remove []string
	cmd := &cobra.Command{
		Use:     "tag KEY [key=value ...]",
		Short:   "Add or replace tags (and remove tags with --remove)",
		Example: "  kmsctl keys tag alias/orders team=pay env=prod --remove owner",
		Args:    cobra.MinimumNArgs(1),
		RunE: a.withClient(func(cmd *cobra.Command, c *kmsclient.Client, args []string) error {
			ctx := cmd.Context()
			id, err := a.resolveKey(ctx, c, args[0])
			if err != nil {
				return err
			}
			add, err := parsePairs(args[1:], "tag")
			if err != nil {
				return err
			}
			if len(add) == 0 && len(remove) == 0 {
				return errors.New("nothing to do: give key=value pairs or --remove")
			}
			var tags map[string]string
			if len(add) > 0 {
				if tags, err = c.TagKey(ctx, id, add); err != nil {
					return err
				}
			}
			if len(remove) > 0 {
				if tags, err = c.UntagKey(ctx, id, remove); err != nil {
					return err
				}
			}
			if tags == nil {
				tags = map[string]string{}
			}
			return a.emit(cmd.OutOrStdout(), tags, func(tw *tabwriter.Writer) {
				fmt.Fprintf(tw, "Tags:\t%s\n", fmtTags(tags))
			})
		}),
	}
	cmd.Flags().StringArrayVar(&remove, "remove", nil, "tag key to remove (repeatable)")
	return cmd
}

func (a *app) keysImport() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "import KEY --material-file FILE",
		Short: "Import your own key material (16 or 32 raw bytes) into an EXTERNAL-origin key",
		Long: `Import key material (BYOK). kmsctl fetches the key's import parameters, wraps the raw
material locally with RSA-OAEP-SHA-256 under the server's one-time public key, and sends
only the wrapped form. The material file should be deleted securely afterwards.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if file == "" {
				return errors.New("--material-file is required")
			}
			c, err := a.clientFor()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			id, err := a.resolveKey(ctx, c, args[0])
			if err != nil {
				return err
			}
			material, err := os.ReadFile(file)
			if err != nil {
				return err
			}
			defer clear(material)
			if len(material) != 16 && len(material) != 32 {
				return fmt.Errorf("key material must be 16 or 32 raw bytes, got %d", len(material))
			}
			p, err := c.GetParametersForImport(ctx, id, "")
			if err != nil {
				return err
			}
			pub, err := x509.ParsePKIXPublicKey(p.PublicKey)
			if err != nil {
				return fmt.Errorf("server sent a bad wrapping key: %w", err)
			}
			rsaPub, ok := pub.(*rsa.PublicKey)
			if !ok {
				return errors.New("server sent a non-RSA wrapping key")
			}
			wrapped, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, rsaPub, material, nil)
			if err != nil {
				return err
			}
			md, err := c.ImportKeyMaterial(ctx, id, p.ImportToken, wrapped)
			if err != nil {
				return err
			}
			return a.printKey(cmd, md)
		},
	}
	cmd.Flags().StringVar(&file, "material-file", "", "file holding the raw key material")
	return cmd
}

// retirementHelp explains retiring a key version; shared by the version
// commands' help.
const retirementHelp = `Retiring an old key version, so that data still encrypted under it stops decrypting:

  1. Rotate:  kmsctl keys rotate KEY          (new data is encrypted under the new version)
  2. Renew the data under the new primary version:
       database rows:   kmsctl orm renew-data-keys / kmsctl orm reencrypt (ormplugin renewal)
       config centers:  kmsctl config renew ...
       kmsgo files:     kmsctl file rewrap IN
  3. Watch the old version go quiet:  kmsctl keys versions KEY
     (DECRYPTS and LAST USED count every decryption under the version, on every replica)
  4. Disable it:  kmsctl keys disable-version KEY VERSION
     kmsd refuses while the version was used for decryption within its quiet period
     (kms.retirement_quiet_period, default 24h) and says when it was last used; wait, or
     finish the renewal, or pass --force. The primary version is never disabled.

A disabled version's material is kept: decryption under it fails with KeyVersionDisabled
until "kmsctl keys enable-version KEY VERSION". It is destroyed only with the key
(kmsctl keys schedule-deletion).`

func (a *app) keysVersions() *cobra.Command {
	return keyCmd(a, &cobra.Command{
		Use:   "versions KEY",
		Short: "List a key's versions with their state and decryption usage",
		Long: `List a key's versions: state (Enabled, Disabled = retired for decryption, Destroyed),
which is primary, how many decryptions used each (DECRYPTS) and when it was last used
(LAST USED; "-" for never). Counts are added to the database by every kmsd replica in
batches (kms.usage_flush_interval, default 10s), so another replica's latest uses may
show up that much later.

` + retirementHelp,
	}, (*kmsclient.Client).ListKeyVersions,
		func(cmd *cobra.Command, vs []kmsclient.KeyVersion) error {
			return a.emit(cmd.OutOrStdout(), vs, func(tw *tabwriter.Writer) {
				fmt.Fprintln(tw, "VERSION\tSTATE\tPRIMARY\tCREATED\tDECRYPTS\tLAST USED")
				for _, v := range vs {
					ct := v.CreationDate
					fmt.Fprintf(tw, "%d\t%s\t%t\t%s\t%d\t%s\n", v.Version, v.State, v.Primary, fmtTime(&ct), v.DecryptCount, fmtTime(v.LastUsedAt))
				}
			})
		})
}

// printVersion prints one key version.
func (a *app) printVersion(cmd *cobra.Command, v *kmsclient.KeyVersion) error {
	return a.emit(cmd.OutOrStdout(), v, func(tw *tabwriter.Writer) {
		ct := v.CreationDate
		for _, row := range [][2]string{
			{"Version", fmt.Sprint(v.Version)}, {"State", string(v.State)}, {"Primary", fmt.Sprint(v.Primary)},
			{"Created", fmtTime(&ct)}, {"Decrypts", fmt.Sprint(v.DecryptCount)}, {"Last used", fmtTime(v.LastUsedAt)},
		} {
			fmt.Fprintf(tw, "%s:\t%s\n", row[0], row[1])
		}
	})
}

// versionArgs parses KEY VERSION.
func versionArgs(args []string) (string, int, error) {
	n, err := strconv.Atoi(args[1])
	if err != nil || n < 1 {
		return "", 0, fmt.Errorf("VERSION must be a positive integer, got %q", args[1])
	}
	return args[0], n, nil
}

func (a *app) keysDisableVersion() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "disable-version KEY VERSION [--force]",
		Short: "Retire a key version: data still encrypted under it stops decrypting (reversible)",
		Long:  retirementHelp,
		Example: `  kmsctl keys disable-version alias/orders 1
  kmsctl keys disable-version alias/orders 1 --force   # even though it was used recently`,
		Args: cobra.ExactArgs(2),
		RunE: a.withClient(func(cmd *cobra.Command, c *kmsclient.Client, args []string) error {
			key, n, err := versionArgs(args)
			if err != nil {
				return err
			}
			v, err := c.DisableKeyVersion(cmd.Context(), key, n, force)
			if err != nil {
				return err
			}
			return a.printVersion(cmd, v)
		}),
	}
	cmd.Flags().BoolVar(&force, "force", false, "disable even if the version was used for decryption within the quiet period")
	return cmd
}

func (a *app) keysEnableVersion() *cobra.Command {
	return &cobra.Command{
		Use:   "enable-version KEY VERSION",
		Short: "Enable a disabled key version again: data under it decrypts again",
		Long:  retirementHelp,
		Args:  cobra.ExactArgs(2),
		RunE: a.withClient(func(cmd *cobra.Command, c *kmsclient.Client, args []string) error {
			key, n, err := versionArgs(args)
			if err != nil {
				return err
			}
			v, err := c.EnableKeyVersion(cmd.Context(), key, n)
			if err != nil {
				return err
			}
			return a.printVersion(cmd, v)
		}),
	}
}

func (a *app) keysRotationPolicy() *cobra.Command {
	var enable, disable bool
	var days int
	cmd := keyCmd(a, &cobra.Command{
		Use:   "rotation-policy KEY [--enable --period-days N | --disable]",
		Short: "Show or set automatic rotation",
	}, func(c *kmsclient.Client, ctx context.Context, key string) (*kmsclient.RotationPolicy, error) {
		switch {
		case enable && disable:
			return nil, errors.New("--enable and --disable exclude each other")
		case enable || disable:
			return c.SetRotationPolicy(ctx, key, enable, days)
		}
		return c.GetRotationPolicy(ctx, key)
	}, func(cmd *cobra.Command, rp *kmsclient.RotationPolicy) error {
		return a.emit(cmd.OutOrStdout(), rp, func(tw *tabwriter.Writer) {
			fmt.Fprintf(tw, "Enabled:\t%t\nPeriod days:\t%d\nNext rotation:\t%s\n", rp.Enabled, rp.PeriodDays, fmtTime(rp.NextRotationAt))
		})
	})
	cmd.Flags().BoolVar(&enable, "enable", false, "turn automatic rotation on")
	cmd.Flags().BoolVar(&disable, "disable", false, "turn automatic rotation off")
	cmd.Flags().IntVar(&days, "period-days", 0, "rotation period (90-2560; 0 means 365)")
	return cmd
}
