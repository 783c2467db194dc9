package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/kmsgo/kmsgo/configcenter"
	"github.com/kmsgo/kmsgo/starter/kmsclient"
)

func (a *app) configCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Encrypt, view and inspect ENC(...) values in config files (YAML, properties, JSON, TOML)",
		Long: `Work on config files that hold ENC(...) values for configcenter (Nacos, etcd, files).

  encrypt-file  replaces every DEC(plaintext) marker with ENC(...) in place, keeping comments and layout
  decrypt-file  prints the file with ENC(...) values decrypted, to stdout only (the file is not changed)
  inspect       lists the path, key id and key version of every ENC(...) value (no kmsd call)
  renew         re-encrypts old-version ENC(...) values in etcd or Nacos in place (compare-and-swap)`,
	}
	cmd.AddCommand(a.configEncryptFileCmd(), a.configDecryptFileCmd(), a.configInspectCmd(), a.configRenewCmd())
	return cmd
}

// fileFormat is --format, or the format inferred from the file name.
func fileFormat(path, flag string) configcenter.Format {
	if flag != "" {
		return configcenter.Format(strings.ToLower(flag))
	}
	return configcenter.FormatOf(path)
}

// decMarker is one DEC(...) marker in a file's text.
type decMarker struct {
	start, end int // text[start:end] is the whole marker
	content    string
	line       int
}

// findDECMarkers finds DEC(...) markers. The content runs to the matching
// ')' on the same line; parentheses inside it must be balanced.
func findDECMarkers(text string) ([]decMarker, error) {
	var out []decMarker
	for pos := 0; ; {
		i := strings.Index(text[pos:], "DEC(")
		if i < 0 {
			return out, nil
		}
		start := pos + i
		line := 1 + strings.Count(text[:start], "\n")
		depth, end := 1, -1
		for j := start + 4; j < len(text) && text[j] != '\n'; j++ {
			switch text[j] {
			case '(':
				depth++
			case ')':
				depth--
			}
			if depth == 0 {
				end = j
				break
			}
		}
		if end < 0 {
			return nil, fmt.Errorf("line %d: DEC( without a matching ')' on the same line", line)
		}
		out = append(out, decMarker{start: start, end: end + 1, content: text[start+4 : end], line: line})
		pos = end + 1
	}
}

// plaintextOf turns a marker's text into the plaintext the config will
// hold once parsed: JSON and properties escapes are resolved.
func plaintextOf(m decMarker, f configcenter.Format) ([]byte, error) {
	switch f {
	case configcenter.FormatJSON:
		var s string
		if err := json.Unmarshal([]byte(`"`+m.content+`"`), &s); err != nil {
			return nil, fmt.Errorf("line %d: DEC(...) content is not valid inside a JSON string", m.line)
		}
		return []byte(s), nil
	case configcenter.FormatProperties:
		mp, err := configcenter.Properties{}.Unmarshal([]byte("k=" + m.content))
		if err != nil {
			return nil, fmt.Errorf("line %d: DEC(...) content: invalid properties escape", m.line)
		}
		s, _ := mp["k"].(string)
		return []byte(s), nil
	}
	return []byte(m.content), nil
}

func (a *app) configEncryptFileCmd() *cobra.Command {
	var f cryptoFlags
	var format string
	cmd := &cobra.Command{
		Use:   "encrypt-file --key KEY FILE",
		Short: "Replace DEC(plaintext) markers in FILE with ENC(...) in place, keeping comments and layout",
		Long: `Replace every DEC(plaintext) marker in a YAML, properties, JSON or TOML file with ENC(<base64>)
encrypted under --key, in place. Everything else in the file (comments, order, indentation)
is kept byte for byte. The plaintext runs to the matching ')' on the same line; in JSON and
properties files it is unescaped first, so the encrypted value is what the config would have
held. The result is parsed before the file is replaced, and the file keeps its mode.`,
		Example: `  # app.yaml:  password: DEC(s3cret)   # DB password
  kmsctl config encrypt-file --key alias/app-config app.yaml
  # app.yaml:  password: ENC(AQ...)      # DB password`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := args[0]
			fi, err := os.Stat(path)
			if err != nil {
				return err
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			text := string(data)
			markers, err := findDECMarkers(text)
			if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			if len(markers) == 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "%s: no DEC(...) markers\n", path)
				return nil
			}
			c, ec, err := a.connect(&f, true)
			if err != nil {
				return err
			}
			ff := fileFormat(path, format)
			var sb strings.Builder
			last := 0
			for _, m := range markers {
				pt, err := plaintextOf(m, ff)
				if err != nil {
					return fmt.Errorf("%s: %w", path, err)
				}
				out, err := c.Encrypt(cmd.Context(), f.key, pt, ec)
				clear(pt)
				if err != nil {
					return fmt.Errorf("%s: line %d: %w", path, m.line, err)
				}
				sb.WriteString(text[last:m.start])
				sb.WriteString("ENC(" + base64.StdEncoding.EncodeToString(out.CiphertextBlob) + ")")
				last = m.end
			}
			sb.WriteString(text[last:])
			result := []byte(sb.String())
			if ff != "" {
				if _, err := configcenter.ParseDocument(configcenter.Document{Name: path, Format: ff, Data: result}); err != nil {
					return fmt.Errorf("%s: the file would not parse after encryption, left unchanged: %w", path, err)
				}
			}
			if err := replaceFile(path, result, fi.Mode().Perm()); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: encrypted %d value(s) under %s\n", path, len(markers), f.key)
			return nil
		},
	}
	f.bind(cmd, "", "")
	cmd.Flags().StringVar(&format, "format", "", "yaml, json, properties or toml (default: from the file name)")
	return cmd
}

// replaceFile writes data to a temporary file beside path with mode perm
// and renames it over path.
func replaceFile(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	name := tmp.Name()
	ok := false
	defer func() {
		if !ok {
			_ = os.Remove(name)
		}
	}()
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(name, path); err != nil {
		return err
	}
	ok = true
	return nil
}

// encPattern matches an ENC(...) value anywhere in a file's text.
var encPattern = regexp.MustCompile(`ENC\(([A-Za-z0-9+/]+={0,2})\)`)

func (a *app) configDecryptFileCmd() *cobra.Command {
	var f cryptoFlags
	cmd := &cobra.Command{
		Use:   "decrypt-file FILE",
		Short: "Print FILE with its ENC(...) values decrypted, to stdout only",
		Long: `Print the file with every ENC(...) value replaced by its plaintext, to stdout. The file
itself is never changed and nothing is written to disk. Values are decrypted in batches.
Any value that cannot be decrypted fails the command (naming its line, not its value).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			locs := encPattern.FindAllSubmatchIndex(data, -1)
			if len(locs) == 0 {
				_, err := cmd.OutOrStdout().Write(data)
				return err
			}
			c, ec, err := a.connect(&f, false)
			if err != nil {
				return err
			}
			idx := map[string]int{}
			var items []kmsclient.DecryptItem
			var lines []int
			for _, l := range locs {
				b64 := string(data[l[2]:l[3]])
				if _, seen := idx[b64]; seen {
					continue
				}
				blob, err := base64.StdEncoding.Strict().DecodeString(b64)
				line := 1 + bytes.Count(data[:l[0]], []byte("\n"))
				if err != nil {
					return fmt.Errorf("%s: line %d: ENC(...) content is not base64", args[0], line)
				}
				idx[b64] = len(items)
				items = append(items, kmsclient.DecryptItem{CiphertextBlob: blob, EncryptionContext: ec})
				lines = append(lines, line)
			}
			res, err := c.DecryptBatch(cmd.Context(), items)
			if err != nil {
				return err
			}
			defer func() {
				for _, r := range res {
					clear(r.Plaintext)
				}
			}()
			var errs []error
			for i, r := range res {
				if r.Err != nil {
					errs = append(errs, fmt.Errorf("%s: line %d: %w", args[0], lines[i], r.Err))
				}
			}
			if len(errs) > 0 {
				return errors.Join(errs...)
			}
			out := make([]byte, 0, len(data))
			last := 0
			for _, l := range locs {
				out = append(out, data[last:l[0]]...)
				out = append(out, res[idx[string(data[l[2]:l[3]])]].Plaintext...)
				last = l[1]
			}
			out = append(out, data[last:]...)
			defer clear(out)
			_, err = cmd.OutOrStdout().Write(out)
			return err
		},
	}
	cmd.Flags().StringArrayVar(&f.context, "context", nil, "encryption context key=value (repeatable; must match the one used to encrypt)")
	return cmd
}

func (a *app) configInspectCmd() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "inspect FILE",
		Short: "List every ENC(...) value in FILE with its path, key id and key version",
		Long: `List the config path, key id and key version of every ENC(...) value in a YAML, JSON,
properties or TOML file (markers inside longer strings included), read from each
ciphertext's public header without calling kmsd: an operator sees which values still
use an old key version after a rotation.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			ff := fileFormat(args[0], format)
			vals, err := configcenter.FindEncrypted(configcenter.Document{Name: args[0], Format: ff, Data: data}, configcenter.Marker{}, true)
			if err != nil {
				return err
			}
			type row struct {
				Path       string `json:"path"`
				KeyID      string `json:"key_id,omitempty"`
				KeyVersion int    `json:"key_version,omitempty"`
				Error      string `json:"error,omitempty"`
			}
			rows := make([]row, 0, len(vals))
			bad := 0
			for _, v := range vals {
				h, err := kmsclient.ParseCiphertextHeader(v.Ciphertext)
				if err != nil {
					bad++
					rows = append(rows, row{Path: v.Path, Error: "not a kmsd ciphertext"})
					continue
				}
				rows = append(rows, row{Path: v.Path, KeyID: h.KeyID, KeyVersion: h.KeyVersion})
			}
			err = a.emit(cmd.OutOrStdout(), rows, func(tw *tabwriter.Writer) {
				fmt.Fprintln(tw, "PATH\tKEY ID\tVERSION")
				for _, r := range rows {
					if r.Error != "" {
						fmt.Fprintf(tw, "%s\t(%s)\t-\n", r.Path, r.Error)
						continue
					}
					fmt.Fprintf(tw, "%s\t%s\t%d\n", r.Path, r.KeyID, r.KeyVersion)
				}
			})
			if err == nil && bad > 0 {
				err = fmt.Errorf("%d value(s) are not kmsd ciphertexts", bad)
			}
			return err
		},
	}
	cmd.Flags().StringVar(&format, "format", "", "yaml, json, properties or toml (default: from the file name)")
	return cmd
}
