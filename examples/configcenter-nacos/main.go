// Command configcenter-nacos reads service config from Nacos with the
// kmsgo Nacos source (configcenter/nacos) and follows its changes.
//
// It prints what the source returns: each dataId as stored in Nacos, so an
// ENC(...) value made with `kmsctl enc` is still ciphertext here (decrypting
// it is the job of the configcenter core, not of a source). The SDK's cache
// and log files go to --dir, created with mode 0700; they too hold only what
// Nacos stores.
//
// Run it against a Nacos 2.x server:
//
//	go run ./examples/configcenter-nacos --server 127.0.0.1:8848 --namespace dev \
//	    --group ORDERS --dataid orders.yaml --print --watch
//
// Credentials for Nacos come from the environment (NACOS_USERNAME and
// NACOS_PASSWORD, or NACOS_ACCESS_KEY and NACOS_SECRET_KEY), never from
// Nacos itself.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"

	"github.com/kmsgo/kmsgo/configcenter"
	"github.com/kmsgo/kmsgo/configcenter/nacos"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "configcenter-nacos:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("configcenter-nacos", flag.ContinueOnError)
	servers := fs.String("server", "127.0.0.1:8848", "Nacos HTTP address(es), comma separated (gRPC is port+1000)")
	namespace := fs.String("namespace", "", "namespace id (empty: public)")
	group := fs.String("group", nacos.DefaultGroup, "group")
	dataIDs := fs.String("dataid", "application.yaml", "dataId(s), comma separated; later ones win when merged")
	dir := fs.String("dir", defaultDir(), "private directory for the Nacos SDK's cache and log (created 0700)")
	printDocs := fs.Bool("print", false, "print each document as stored (ENC values stay ciphertext)")
	watch := fs.Bool("watch", false, "keep running and print every change")
	changes := fs.Int("changes", 0, "with --watch: stop after this many changes (0: until interrupted)")
	if err := fs.Parse(args); err != nil {
		return err
	}

	src, err := nacos.New(nacos.Config{
		Servers:   strings.Split(*servers, ","),
		Namespace: *namespace,
		Group:     *group,
		DataIDs:   strings.Split(*dataIDs, ","),
		Username:  os.Getenv("NACOS_USERNAME"),
		Password:  os.Getenv("NACOS_PASSWORD"),
		AccessKey: os.Getenv("NACOS_ACCESS_KEY"),
		SecretKey: os.Getenv("NACOS_SECRET_KEY"),
		Dir:       *dir,
	})
	if err != nil {
		return err
	}
	defer src.Close()

	st, err := src.Load(ctx)
	if err != nil {
		return err
	}
	show(stdout, "loaded", st, *printDocs)
	if !*watch {
		return nil
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	seen := 0
	err = src.Watch(ctx, func(st configcenter.State) {
		show(stdout, "changed", st, *printDocs)
		seen++
		if *changes > 0 && seen >= *changes {
			cancel()
		}
	}, func(err error) {
		fmt.Fprintln(os.Stderr, "configcenter-nacos: (will retry)", err)
	})
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

func show(w io.Writer, what string, st configcenter.State, printDocs bool) {
	fmt.Fprintf(w, "%s revision %s: %d document(s)\n", what, st.Revision, len(st.Docs))
	for _, d := range st.Docs {
		format := string(d.Format)
		if format == "" {
			format = "from suffix"
		}
		fmt.Fprintf(w, "  %s (%s, %d bytes)\n", d.Name, format, len(d.Data))
		if printDocs {
			for _, line := range strings.Split(strings.TrimRight(string(d.Data), "\n"), "\n") {
				fmt.Fprintf(w, "    | %s\n", line)
			}
		}
	}
}

func defaultDir() string {
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "kmsgo", "nacos")
	}
	return filepath.Join(os.TempDir(), "kmsgo-nacos")
}
