package main

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/kmsgo/kmsgo/starter/kmsclient"
)

type cryptoFlags struct {
	key      string
	context  []string
	in       string
	value    string
	valueSet bool
}

func (f *cryptoFlags) bind(cmd *cobra.Command, valueFlag, valueHelp string) {
	cmd.Flags().StringVar(&f.key, "key", "", "key id or alias (alias/orders)")
	cmd.Flags().StringArrayVar(&f.context, "context", nil, "encryption context key=value (repeatable; must match exactly on decrypt)")
	cmd.Flags().StringVar(&f.in, "in", "", "read the input from this file (\"-\" or no flag: stdin)")
	if valueFlag != "" {
		cmd.Flags().StringVar(&f.value, valueFlag, "", valueHelp)
	}
}

// connect checks that --key is given when needKey, connects to kmsd and
// parses the --context pairs.
func (a *app) connect(f *cryptoFlags, needKey bool) (*kmsclient.Client, map[string]string, error) {
	if needKey && f.key == "" {
		return nil, nil, errors.New("--key is required")
	}
	c, err := a.clientFor()
	if err != nil {
		return nil, nil, err
	}
	ec, err := parsePairs(f.context, "context")
	if err != nil {
		return nil, nil, err
	}
	return c, ec, nil
}

// ParseENC extracts the base64 blob of an ENC(...) value; other input is
// returned trimmed.
func ParseENC(s string) string {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "ENC(") && strings.HasSuffix(s, ")") {
		return s[4 : len(s)-1]
	}
	return s
}

func (a *app) encryptCmd() *cobra.Command {
	var f cryptoFlags
	cmd := &cobra.Command{
		Use:   "encrypt --key KEY [--plaintext TEXT | --in FILE]",
		Short: "Encrypt up to 4 KiB under a master key; prints the base64 ciphertext",
		Example: `  kmsctl encrypt --key alias/orders --plaintext 'hello' --context tenant=7
  kmsctl encrypt --key alias/orders --in secret.bin > secret.enc`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, ec, err := a.connect(&f, true)
			if err != nil {
				return err
			}
			pt, err := a.readInput(cmd, f.value, f.in, cmd.Flags().Changed("plaintext"))
			if err != nil {
				return err
			}
			defer clear(pt)
			out, err := c.Encrypt(cmd.Context(), f.key, pt, ec)
			if err != nil {
				return err
			}
			b64 := base64.StdEncoding.EncodeToString(out.CiphertextBlob)
			js, err := a.jsonOut()
			if err != nil {
				return err
			}
			if !js {
				fmt.Fprintln(cmd.OutOrStdout(), b64)
				return nil
			}
			return a.emit(cmd.OutOrStdout(), map[string]any{"key_id": out.KeyID, "key_version": out.KeyVersion, "ciphertext_blob": b64}, nil)
		},
	}
	f.bind(cmd, "plaintext", "the plaintext as a literal string")
	return cmd
}

func (a *app) decryptCmd() *cobra.Command {
	var f cryptoFlags
	var asBase64 bool
	cmd := &cobra.Command{
		Use:   "decrypt [--ciphertext B64 | --in FILE]",
		Short: "Decrypt a base64 ciphertext (ENC(...) accepted); prints the plaintext",
		Long: `Decrypt a ciphertext produced by encrypt or enc. The input is base64, optionally wrapped
as ENC(...). The plaintext is written to stdout as is (use --base64 for binary data).
The key is found inside the ciphertext; --key additionally asserts which key it must be.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, ec, err := a.connect(&f, false)
			if err != nil {
				return err
			}
			raw, err := a.readInput(cmd, f.value, f.in, cmd.Flags().Changed("ciphertext"))
			if err != nil {
				return err
			}
			blob, err := base64.StdEncoding.DecodeString(ParseENC(string(raw)))
			if err != nil {
				return fmt.Errorf("ciphertext is not valid base64: %w", err)
			}
			out, err := c.DecryptWithKeyID(cmd.Context(), f.key, blob, ec)
			if err != nil {
				return err
			}
			defer clear(out.Plaintext)
			js, err := a.jsonOut()
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			switch {
			case js:
				return a.emit(w, map[string]any{"key_id": out.KeyID, "key_version": out.KeyVersion, "plaintext": out.Plaintext}, nil)
			case asBase64:
				fmt.Fprintln(w, base64.StdEncoding.EncodeToString(out.Plaintext))
			default:
				_, err = w.Write(out.Plaintext)
			}
			return err
		},
	}
	f.bind(cmd, "ciphertext", "the base64 ciphertext (or ENC(...))")
	cmd.Flags().BoolVar(&asBase64, "base64", false, "print the plaintext base64-encoded")
	return cmd
}

func (a *app) datakeyCmd() *cobra.Command {
	var f cryptoFlags
	var noPlaintext bool
	cmd := &cobra.Command{
		Use:   "datakey --key KEY",
		Short: "Generate a 256-bit data key: plaintext (base64) and its ciphertext under KEY",
		Long: `Generate a data key for envelope encryption. Encrypt your data locally with the
plaintext key, store only the ciphertext blob, and decrypt it with "kmsctl decrypt"
when needed. --no-plaintext returns only the ciphertext.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, ec, err := a.connect(&f, true)
			if err != nil {
				return err
			}
			dk, err := c.GenerateDataKey(cmd.Context(), f.key, ec)
			if noPlaintext {
				dk, err = c.GenerateDataKeyWithoutPlaintext(cmd.Context(), f.key, ec)
			}
			if err != nil {
				return err
			}
			defer clear(dk.Plaintext)
			out := map[string]any{"key_id": dk.KeyID, "key_version": dk.KeyVersion, "ciphertext_blob": dk.CiphertextBlob}
			if !noPlaintext {
				out["plaintext"] = dk.Plaintext
			}
			return a.emit(cmd.OutOrStdout(), out, func(tw *tabwriter.Writer) {
				fmt.Fprintf(tw, "Key ID:\t%s\nKey version:\t%d\n", dk.KeyID, dk.KeyVersion)
				if !noPlaintext {
					fmt.Fprintf(tw, "Plaintext:\t%s\n", base64.StdEncoding.EncodeToString(dk.Plaintext))
				}
				fmt.Fprintf(tw, "Ciphertext:\t%s\n", base64.StdEncoding.EncodeToString(dk.CiphertextBlob))
			})
		},
	}
	f.bind(cmd, "", "")
	cmd.Flags().BoolVar(&noPlaintext, "no-plaintext", false, "return only the encrypted data key")
	return cmd
}

func (a *app) encCmd() *cobra.Command {
	var f cryptoFlags
	cmd := &cobra.Command{
		Use:   "enc --key KEY [VALUE]",
		Short: "Encrypt a config value and print it as ENC(<base64>) for Nacos/etcd",
		Long: `Encrypt one configuration value and print ENC(<base64 ciphertext>), ready to paste into a
config center (Nacos, etcd, a file). Applications using kmsgo's configcenter decrypt it
transparently. The value comes from the argument or, when absent, from stdin (one
trailing newline is removed). Prefer stdin so the secret stays out of shell history.`,
		Example: `  printf '%s' 's3cret' | kmsctl enc --key alias/app-config
  kmsctl enc --key alias/app-config 'jdbc-password'`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ec, err := a.connect(&f, true)
			if err != nil {
				return err
			}
			var pt []byte
			if len(args) == 1 {
				pt = []byte(args[0])
			} else {
				if pt, err = a.readInput(cmd, "", f.in, false); err != nil {
					return err
				}
				pt = bytes.TrimSuffix(bytes.TrimSuffix(pt, []byte("\n")), []byte("\r"))
			}
			defer clear(pt)
			if len(pt) == 0 {
				return errors.New("empty value")
			}
			out, err := c.Encrypt(cmd.Context(), f.key, pt, ec)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "ENC(%s)\n", base64.StdEncoding.EncodeToString(out.CiphertextBlob))
			return nil
		},
	}
	f.bind(cmd, "", "")
	return cmd
}
