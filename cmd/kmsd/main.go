// Command kmsd is the kmsgo key management server.
//
// With no configuration it keeps everything under --data-dir (SQLite
// database, the development software key backend, the audit chain key) and
// listens on 127.0.0.1:8400. On first start it creates an admin access key
// and writes it, with the endpoint it listens on, to
// <data-dir>/admin-credentials.json (mode 0600); it prints the path, never
// the secret. Use `kmsctl configure --from-file <path>`.
//
// Configuration: --config file.yaml (see server/config.Config), then KMSD_*
// environment variables, then --data-dir and --listen flags.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/kmsgo/kmsgo/server/config"
	"github.com/kmsgo/kmsgo/server/kmsd"
)

// defaultGCPercent is kmsd's GOGC when the environment sets none: its live
// heap is small (tens of MB) and short-lived per-request garbage dominates,
// so collecting at 4x the live heap instead of 2x halves the GC work per
// request for a few MB more memory.
const defaultGCPercent = 400

func main() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr, nil); err != nil {
		fmt.Fprintln(os.Stderr, "kmsd:", err)
		os.Exit(1)
	}
}

// run starts kmsd and serves until ctx ends. ready, when not nil, receives
// the listening address once the server accepts connections.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, ready func(addr string)) error {
	fs := flag.NewFlagSet("kmsd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "YAML configuration file (optional)")
	dataDir := fs.String("data-dir", "", "data directory (overrides data_dir / KMSD_DATA_DIR)")
	listen := fs.String("listen", "", "listen address (overrides listen / KMSD_LISTEN)")
	printEnv := fs.Bool("print-env", false, "list the KMSD_* environment variables and exit")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: kmsd [--config file.yaml] [--data-dir dir] [--listen addr]\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if *printEnv {
		fmt.Fprintln(stdout, strings.Join(config.EnvNames(), "\n"))
		return nil
	}
	cfg, err := config.Load(*cfgPath, getenv)
	if err != nil {
		return err
	}
	if *dataDir != "" {
		cfg.DataDir = *dataDir
	}
	if *listen != "" {
		cfg.Listen = *listen
	}
	log := newLogger(cfg.Log, stderr)

	app, err := kmsd.Open(ctx, cfg, kmsd.Deps{}, log)
	if err != nil {
		return err
	}
	defer app.Close()
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	// The credentials file names the address actually bound (port 0 picks one).
	app.Config.Listen = ln.Addr().String()
	if p, err := app.EnsureBootstrapAdmin(ctx); err != nil {
		_ = ln.Close()
		return fmt.Errorf("bootstrap admin: %w", err)
	} else if p != "" {
		fmt.Fprintf(stdout, "kmsd: created the bootstrap admin access key; credentials (and endpoint %s) written to %s (mode 0600)\n", app.Config.Endpoint(), p)
		fmt.Fprintf(stdout, "kmsd: configure the CLI with: kmsctl configure --from-file %s --endpoint %s\n", p, app.Config.Endpoint())
	}
	srv := &http.Server{
		Handler:           app.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	scheme := "http"
	if cfg.TLS.CertFile != "" {
		scheme = "https"
		srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	errc := make(chan error, 1)
	go func() {
		if scheme == "https" {
			errc <- srv.ServeTLS(ln, cfg.TLS.CertFile, cfg.TLS.KeyFile)
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	addr := ln.Addr().String()
	log.Info("kmsd listening", "addr", addr, "scheme", scheme, "hsm_backend", cfg.HSM.Backend,
		"database", cfg.Database.Driver, "region", cfg.Region)
	fmt.Fprintf(stdout, "kmsd: listening on %s://%s\n", scheme, addr)
	if ready != nil {
		ready(addr)
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("kmsd shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return err
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func newLogger(c config.LogConfig, w io.Writer) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.Level)); err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}
