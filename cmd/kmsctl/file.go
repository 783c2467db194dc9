package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"

	"github.com/kmsgo/kmsgo/starter/kmsclient"
	"github.com/kmsgo/kmsgo/starter/kmsclient/envelope"
)

// progressThreshold is the input size from which "--progress auto" draws
// a progress bar on a terminal (inputs of unknown size always get one).
const progressThreshold = 16 << 20

type fileFlags struct {
	keys      []string
	context   []string
	chunkSize int
	force     bool
	progress  string
}

func (f *fileFlags) bind(cmd *cobra.Command, keysHelp string, withContext bool) {
	cmd.Flags().StringArrayVarP(&f.keys, "key", "k", nil, keysHelp)
	if withContext {
		cmd.Flags().StringArrayVar(&f.context, "context", nil, "encryption context key=value (repeatable; stored in the header, not secret)")
	}
	cmd.Flags().BoolVarP(&f.force, "force", "f", false, "overwrite OUT if it exists")
	cmd.Flags().StringVar(&f.progress, "progress", "auto", "progress bar on stderr: auto (a terminal and a large or unknown-size input), always, never")
}

func (a *app) fileCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "file",
		Short: "Encrypt and decrypt files and streams of any size (envelope encryption)",
		Long: `Encrypt files and streams of any size locally with a data key from kmsd, in constant
memory. The output starts with a header holding the data key wrapped by one or more
master keys (any one of them can decrypt), the encryption context and the chunk size;
the data follows in 64 KiB AES-256-GCM chunks (the STREAM construction), so tampering,
reordering and truncation are detected. The format is documented in
starter/kmsclient/envelope/FORMAT.md.

IN and OUT are file names; "-" is stdin or stdout. Output files are created with mode
0600 through a temporary file that is renamed into place only on success, so a failed
decryption never leaves partial plaintext behind (with "-" as OUT, only chunks that
authenticated are written, but a failure can come after some of them).`,
		Example: `  kmsctl file encrypt -k alias/backups --context host=db1 db.tar db.tar.kms
  kmsctl file encrypt -k alias/eu -k alias/us report.pdf report.pdf.kms   # two recipients
  pg_dump app | kmsctl file encrypt -k alias/backups - dump.sql.kms
  kmsctl file decrypt --context host=db1 db.tar.kms db.tar
  kmsctl file inspect db.tar.kms
  kmsctl file rewrap db.tar.kms                         # after a key rotation, in place`,
	}
	cmd.AddCommand(a.fileEncryptCmd(), a.fileDecryptCmd(), a.fileInspectCmd(), a.fileRewrapCmd())
	return cmd
}

func (a *app) fileEncryptCmd() *cobra.Command {
	var f fileFlags
	cmd := &cobra.Command{
		Use:   "encrypt -k KEY [-k KEY ...] [--context k=v ...] IN OUT",
		Short: "Encrypt IN to OUT under one or more master keys",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(f.keys) == 0 {
				return errors.New("--key is required")
			}
			c, ec, err := a.fileConnect(&f)
			if err != nil {
				return err
			}
			in, size, closeIn, err := a.openIn(cmd, args[0])
			if err != nil {
				return err
			}
			defer closeIn()
			src := a.progressReader(cmd, &f, in, size, "encrypt")
			return a.writeOut(cmd, args[1], f.force, func(out io.Writer) error {
				w, err := envelope.New(c).NewWriter(cmd.Context(), out, f.keys[0], envelope.WriterOptions{
					Context: ec, ExtraKeyIDs: f.keys[1:], ChunkSize: f.chunkSize, SizeHint: max(size, 0)})
				if err != nil {
					return err
				}
				if _, err := io.Copy(w, ctxReader{cmd.Context(), src}); err != nil {
					return err
				}
				return w.Close()
			})
		},
	}
	f.bind(cmd, "master key id or alias (repeatable: every key can decrypt; the first makes the data key)", true)
	cmd.Flags().IntVar(&f.chunkSize, "chunk-size", envelope.DefaultChunkSize, "plaintext bytes per chunk")
	return cmd
}

func (a *app) fileDecryptCmd() *cobra.Command {
	var f fileFlags
	cmd := &cobra.Command{
		Use:   "decrypt [-k KEY ...] [--context k=v ...] IN OUT",
		Short: "Decrypt IN to OUT; with --context the header's context must match exactly",
		Long: `Decrypt a file made by "kmsctl file encrypt". The data key is unwrapped by kmsd through the
first recipient in the header that these credentials can use; -k restricts which master
keys are acceptable. With --context, the header's encryption context must equal it
exactly; without it, any context is accepted (see "kmsctl file inspect").`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ec, err := a.fileConnect(&f)
			if err != nil {
				return err
			}
			if ec == nil && cmd.Flags().Changed("context") {
				ec = map[string]string{}
			}
			in, size, closeIn, err := a.openIn(cmd, args[0])
			if err != nil {
				return err
			}
			defer closeIn()
			src := a.progressReader(cmd, &f, in, size, "decrypt")
			return a.writeOut(cmd, args[1], f.force, func(out io.Writer) error {
				r, err := envelope.New(c).NewReader(cmd.Context(), ctxReader{cmd.Context(), src}, envelope.ReaderOptions{Context: ec, KeyIDs: f.keys})
				if err != nil {
					return err
				}
				_, err = io.Copy(out, r)
				return err
			})
		},
	}
	f.bind(cmd, "accept only these master keys (ids or aliases; repeatable)", true)
	return cmd
}

// inspectJSON is the -o json form of file inspect.
type inspectJSON struct {
	*envelope.Header
	FileSize       int64  `json:"file_size,omitempty"`
	PlaintextSize  *int64 `json:"plaintext_size,omitempty"`
	Chunks         int64  `json:"chunks,omitempty"`
	Authenticated  bool   `json:"authenticated"`
	SizeConsistent *bool  `json:"size_consistent,omitempty"`
}

func (a *app) fileInspectCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "inspect IN",
		Short: "Print a file's header (key ids, context, sizes) without decrypting; no kmsd call",
		Long: `Print the header of a file made by "kmsctl file encrypt": format version, chunk size, the
encryption context and the recipients (master key ids, wrapped key sizes), and, for a
regular file, the plaintext size and chunk count implied by its length. Nothing is
authenticated here (that needs the data key): "decrypt" checks it all.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			in, size, closeIn, err := a.openIn(cmd, args[0])
			if err != nil {
				return err
			}
			defer closeIn()
			h, err := envelope.ReadHeader(in)
			if err != nil {
				return err
			}
			out := inspectJSON{Header: h}
			var sizeErr error
			if size >= 0 {
				out.FileSize = size
				pt, chunks, err := h.BodySize(size)
				ok := err == nil
				out.SizeConsistent = &ok
				sizeErr = err
				if ok {
					out.PlaintextSize, out.Chunks = &pt, chunks
				}
			}
			return a.emit(cmd.OutOrStdout(), out, func(tw *tabwriter.Writer) {
				fmt.Fprintf(tw, "Format:\tkmsgo stream v%d (AES-256-GCM chunks, HKDF-SHA256, STREAM)\n", h.Version)
				fmt.Fprintf(tw, "Chunk size:\t%d\n", h.ChunkSize)
				fmt.Fprintf(tw, "Header size:\t%d\n", h.Size)
				fmt.Fprintf(tw, "Context:\t%s\n", formatContext(h.Context))
				for i, r := range h.Recipients {
					fmt.Fprintf(tw, "Recipient %d:\t%s\t(wrapped data key, %d bytes)\n", i+1, r.KeyID, len(r.WrappedKey))
				}
				switch {
				case size < 0:
				case sizeErr != nil:
					fmt.Fprintf(tw, "File size:\t%d (not a complete stream: %v)\n", size, sizeErr)
				default:
					fmt.Fprintf(tw, "File size:\t%d\n", size)
					fmt.Fprintf(tw, "Plaintext:\t%d bytes in %d chunks\n", *out.PlaintextSize, out.Chunks)
				}
				fmt.Fprintf(tw, "Authenticated:\tno (inspect does not decrypt)\n")
			})
		},
	}
}

func (a *app) fileRewrapCmd() *cobra.Command {
	var f fileFlags
	cmd := &cobra.Command{
		Use:   "rewrap [-k KEY ...] IN [OUT]",
		Short: "Re-encrypt the wrapped data keys in a file's header through kmsd; the body is copied unchanged",
		Long: `Replace the wrapped data keys in the header through kmsd ReEncrypt: the data key never
reaches this machine and the encrypted body is copied byte for byte.

Without -k, every recipient is re-encrypted under its own master key's current primary
version (run it after a key rotation, before retiring old versions). With -k, the
recipients become exactly the given keys (add a region's key, drop a compromised one).
Without OUT the file is rewritten in place (through a temporary file and a rename).`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, _, err := a.fileConnect(&f)
			if err != nil {
				return err
			}
			if args[0] == "-" && len(args) == 1 {
				return errors.New("rewrap from stdin needs OUT")
			}
			outPath, force := args[0], true
			if len(args) == 2 {
				outPath, force = args[1], f.force || args[1] == args[0]
			}
			in, _, closeIn, err := a.openIn(cmd, args[0])
			if err != nil {
				return err
			}
			defer closeIn()
			var h *envelope.Header
			err = a.writeOut(cmd, outPath, force, func(out io.Writer) error {
				var err error
				h, err = envelope.New(c).Rewrap(cmd.Context(), out, in, envelope.RewrapOptions{KeyIDs: f.keys})
				return err
			})
			if err != nil {
				return err
			}
			ids := make([]string, len(h.Recipients))
			for i, r := range h.Recipients {
				ids[i] = r.KeyID
			}
			if outPath != "-" {
				fmt.Fprintf(cmd.ErrOrStderr(), "rewrapped %s: recipients %s\n", outPath, strings.Join(ids, ", "))
			}
			return nil
		},
	}
	f.bind(cmd, "new recipient list: master key ids or aliases (repeatable; default: the current ones)", false)
	return cmd
}

// fileConnect connects to kmsd and parses --context.
func (a *app) fileConnect(f *fileFlags) (*kmsclient.Client, map[string]string, error) {
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

// openIn opens IN ("-" is stdin) and returns its size (-1 when unknown).
func (a *app) openIn(cmd *cobra.Command, path string) (io.Reader, int64, func(), error) {
	if path == "-" {
		return cmd.InOrStdin(), -1, func() {}, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, nil, err
	}
	size := int64(-1)
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
		size = fi.Size()
	}
	return f, size, func() { f.Close() }, nil
}

// writeOut runs fill on OUT: stdout for "-", otherwise a 0600 temporary
// file in OUT's directory that is synced and renamed to OUT only when fill
// succeeds, and removed otherwise.
func (a *app) writeOut(cmd *cobra.Command, path string, force bool, fill func(io.Writer) error) error {
	if path == "-" {
		return fill(cmd.OutOrStdout())
	}
	if !force {
		if _, err := os.Lstat(path); err == nil {
			return fmt.Errorf("%s exists (use --force to overwrite)", path)
		}
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(0o600); err != nil {
		return err
	}
	if err := fill(tmp); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	ok = true
	return nil
}

// ctxReader stops a long copy when the command is cancelled (Ctrl-C).
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// progressReader wraps r with a progress bar on stderr when --progress
// asks for one (auto: stderr is a terminal and the input is large or of
// unknown size).
func (a *app) progressReader(cmd *cobra.Command, f *fileFlags, r io.Reader, size int64, verb string) io.Reader {
	switch f.progress {
	case "never":
		return r
	case "always":
	default: // auto
		fd, ok := a.env.Stderr.(interface{ Fd() uintptr })
		if !ok || !isatty.IsTerminal(fd.Fd()) || (size >= 0 && size < progressThreshold) {
			return r
		}
	}
	return &progress{r: r, w: cmd.ErrOrStderr(), total: size, verb: verb, start: time.Now()}
}

// progress draws "verb [#####.....]  45%  123.4 MiB / 256.0 MiB  210.3 MiB/s"
// at most every 200ms, and a last line at EOF.
type progress struct {
	r     io.Reader
	w     io.Writer
	total int64
	done  int64
	verb  string
	start time.Time
	last  time.Time
	ended bool
}

func (p *progress) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.done += int64(n)
	now := time.Now()
	if err == io.EOF && !p.ended {
		p.ended = true
		p.draw(now)
		fmt.Fprintln(p.w)
	} else if now.Sub(p.last) >= 200*time.Millisecond {
		p.draw(now)
	}
	return n, err
}

func (p *progress) draw(now time.Time) {
	p.last = now
	const mib = 1 << 20
	rate := float64(p.done) / mib / max(now.Sub(p.start).Seconds(), 1e-3)
	if p.total <= 0 {
		fmt.Fprintf(p.w, "\r%s %8.1f MiB  %7.1f MiB/s", p.verb, float64(p.done)/mib, rate)
		return
	}
	frac := min(float64(p.done)/float64(p.total), 1)
	const width = 30
	bar := strings.Repeat("#", int(frac*width)) + strings.Repeat(".", width-int(frac*width))
	fmt.Fprintf(p.w, "\r%s [%s] %3.0f%%  %.1f / %.1f MiB  %.1f MiB/s", p.verb, bar, frac*100,
		float64(p.done)/mib, float64(p.total)/mib, rate)
}

func formatContext(m map[string]string) string {
	if len(m) == 0 {
		return "(none)"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return strings.Join(parts, ", ")
}
