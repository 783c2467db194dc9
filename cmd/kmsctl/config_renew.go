package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/kmsgo/kmsgo/configcenter"
	"github.com/kmsgo/kmsgo/configcenter/etcd"
	"github.com/kmsgo/kmsgo/configcenter/nacos"
)

type renewFlags struct {
	etcdEndpoints    []string
	key, prefix      string
	etcdUser         string
	etcdPasswordFile string
	etcdCACert       string
	etcdCert         string
	etcdKey          string

	nacosServers      []string
	namespace, group  string
	dataIDs           []string
	nacosUser         string
	nacosPasswordFile string
	nacosAccessKey    string
	nacosSecretFile   string
	nacosDir          string

	context  []string
	dryRun   bool
	attempts int
	quiet    bool
	timeout  time.Duration
}

// readSecretFile reads a secret from a file, trimming one trailing newline.
func readSecretFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

// secret is the flag's file content when given, else the environment
// variable.
func (a *app) secret(file, env string) (string, error) {
	if file != "" {
		return readSecretFile(file)
	}
	return a.getenv(env), nil
}

func (a *app) configRenewCmd() *cobra.Command {
	var f renewFlags
	cmd := &cobra.Command{
		Use:   "renew (--etcd-endpoints URLS (--key KEY | --prefix PREFIX) | --nacos-server ADDR --data-id ID...)",
		Short: "Re-encrypt ENC(...) values in etcd or Nacos under their key's primary version (compare-and-swap)",
		Long: `Find every ENC(...) value stored in etcd (one key or every key under a prefix) or in Nacos
dataIds whose key version is not its key's primary version, re-encrypt it inside kmsd with
ReEncrypt (the plaintext never reaches this machine) under the same key, and write the
document back with compare-and-swap: an etcd transaction on the key's mod revision, a Nacos
publish with the read content's MD5. Every byte outside the markers (comments, layout) is
kept; watching applications pick up the new ciphertext, with the same plaintext, without a
restart. A concurrent edit always wins: the document is re-read and renewed again, a few
times at most. A value that cannot be renewed is left as it is and reported; the command
then exits non-zero. --dry-run only lists what would change.

Config-center credentials come from the environment (ETCD_USERNAME, ETCD_PASSWORD,
NACOS_USERNAME, NACOS_PASSWORD, NACOS_ACCESS_KEY, NACOS_SECRET_KEY) or from files named
by the --*-file flags; they are never printed.`,
		Example: `  kmsctl config renew --etcd-endpoints http://127.0.0.1:2379 --prefix /config/orders/ --dry-run
  kmsctl config renew --etcd-endpoints http://127.0.0.1:2379 --key /config/orders.yaml
  NACOS_USERNAME=ops NACOS_PASSWORD=... kmsctl config renew --nacos-server 10.0.0.5:8848 \
      --namespace prod --group ORDERS --data-id orders.yaml --data-id secrets.properties`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			useEtcd, useNacos := len(f.etcdEndpoints) > 0, len(f.nacosServers) > 0
			if useEtcd == useNacos {
				return errors.New("give either --etcd-endpoints or --nacos-server")
			}
			ec, err := parsePairs(f.context, "context")
			if err != nil {
				return err
			}
			var sr configcenter.SourceRenewer
			if useEtcd {
				r, closeFn, err := a.etcdRenewer(&f)
				if err != nil {
					return err
				}
				defer closeFn()
				sr = r
			} else {
				r, closeFn, err := a.nacosRenewer(&f)
				if err != nil {
					return err
				}
				defer closeFn()
				sr = r
			}
			c, err := a.clientFor()
			if err != nil {
				return err
			}
			errw := cmd.ErrOrStderr()
			opts := configcenter.RenewOptions{Client: c, EncryptionContext: ec, DryRun: f.dryRun}
			if !f.quiet {
				opts.OnValue = func(ev configcenter.RenewEvent) {
					switch ev.Outcome {
					case configcenter.OutcomeFailed:
						fmt.Fprintf(errw, "%s:%d: failed: %v\n", ev.Document, ev.Line, ev.Err)
					case configcenter.OutcomeSkipped:
						fmt.Fprintf(errw, "%s:%d: %s v%d current\n", ev.Document, ev.Line, ev.KeyID, ev.KeyVersion)
					default:
						fmt.Fprintf(errw, "%s:%d: %s v%d -> v%d %s\n", ev.Document, ev.Line, ev.KeyID, ev.KeyVersion, ev.NewVersion, ev.Outcome)
					}
				}
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), f.timeout)
			defer cancel()
			rep, runErr := sr.Renew(ctx, opts)
			if err := a.emit(cmd.OutOrStdout(), rep, func(tw *tabwriter.Writer) {
				fmt.Fprintf(tw, "Source:\t%s\n", sr.Name())
				if rep.DryRun {
					fmt.Fprintf(tw, "Mode:\tdry run (nothing written)\n")
				}
				fmt.Fprintf(tw, "Documents:\t%d\nWritten:\t%d\nConflicts:\t%d\nGave up:\t%d\n", rep.Documents, rep.Written, rep.Conflicts, rep.GaveUp)
				verb := "Renewed"
				if rep.DryRun {
					verb = "Would renew"
				}
				fmt.Fprintf(tw, "Scanned:\t%d\n%s:\t%d\nSkipped:\t%d\nFailed:\t%d\n", rep.Scanned, verb, rep.Renewed, rep.Skipped, rep.Failed)
			}); err != nil {
				return err
			}
			if runErr != nil {
				return runErr
			}
			return rep.Err()
		},
	}
	fl := cmd.Flags()
	fl.StringSliceVar(&f.etcdEndpoints, "etcd-endpoints", nil, "etcd client URLs (comma-separated)")
	fl.StringVar(&f.key, "key", "", "etcd key holding a document or a value")
	fl.StringVar(&f.prefix, "prefix", "", "renew every etcd key under this prefix")
	fl.StringVar(&f.etcdUser, "etcd-user", "", "etcd user (default $ETCD_USERNAME); password from $ETCD_PASSWORD or --etcd-password-file")
	fl.StringVar(&f.etcdPasswordFile, "etcd-password-file", "", "file holding the etcd password")
	fl.StringVar(&f.etcdCACert, "etcd-cacert", "", "PEM CA bundle to verify etcd's TLS certificate (https endpoints)")
	fl.StringVar(&f.etcdCert, "etcd-cert", "", "client certificate (PEM) for etcd mutual TLS")
	fl.StringVar(&f.etcdKey, "etcd-key", "", "client key (PEM) for etcd mutual TLS")
	fl.StringSliceVar(&f.nacosServers, "nacos-server", nil, "Nacos server HTTP address host:port (repeatable; gRPC on port+1000)")
	fl.StringVar(&f.namespace, "namespace", "", "Nacos namespace id (default: public)")
	fl.StringVar(&f.group, "group", nacos.DefaultGroup, "Nacos group")
	fl.StringArrayVar(&f.dataIDs, "data-id", nil, "Nacos dataId (repeatable)")
	fl.StringVar(&f.nacosUser, "nacos-user", "", "Nacos user (default $NACOS_USERNAME); password from $NACOS_PASSWORD or --nacos-password-file")
	fl.StringVar(&f.nacosPasswordFile, "nacos-password-file", "", "file holding the Nacos password")
	fl.StringVar(&f.nacosAccessKey, "nacos-access-key", "", "Nacos access key (default $NACOS_ACCESS_KEY); secret from $NACOS_SECRET_KEY or --nacos-secret-key-file")
	fl.StringVar(&f.nacosSecretFile, "nacos-secret-key-file", "", "file holding the Nacos secret key")
	fl.StringVar(&f.nacosDir, "nacos-dir", "", "directory for the Nacos SDK's cache and log (default: a private temporary directory, removed afterwards)")
	fl.StringArrayVar(&f.context, "context", nil, "encryption context key=value the values were encrypted with (repeatable; kmsctl enc --context)")
	fl.BoolVar(&f.dryRun, "dry-run", false, "only list what would change; write nothing")
	fl.IntVar(&f.attempts, "attempts", 5, "compare-and-swap attempts per document before leaving it to a concurrent editor")
	fl.DurationVar(&f.timeout, "timeout", 10*time.Minute, "give up after this long (an unreachable etcd or Nacos is retried until then)")
	fl.BoolVarP(&f.quiet, "quiet", "q", false, "no per-value progress lines on stderr")
	return cmd
}

func (a *app) etcdRenewer(f *renewFlags) (*etcd.Renewer, func(), error) {
	if (f.key == "") == (f.prefix == "") {
		return nil, nil, errors.New("give exactly one of --key and --prefix with --etcd-endpoints")
	}
	user := f.etcdUser
	if user == "" {
		user = a.getenv("ETCD_USERNAME")
	}
	pass, err := a.secret(f.etcdPasswordFile, "ETCD_PASSWORD")
	if err != nil {
		return nil, nil, err
	}
	tlsCfg, err := etcdTLS(f)
	if err != nil {
		return nil, nil, err
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: f.etcdEndpoints, DialTimeout: 10 * time.Second,
		Username: user, Password: pass, TLS: tlsCfg, Logger: zap.NewNop()})
	if err != nil {
		return nil, nil, fmt.Errorf("etcd: %w", err)
	}
	r, err := etcd.NewRenewer(cli, etcd.RenewerOptions{Key: f.key, Prefix: f.prefix, Attempts: f.attempts})
	if err != nil {
		_ = cli.Close()
		return nil, nil, err
	}
	return r, func() { _ = cli.Close() }, nil
}

func (a *app) nacosRenewer(f *renewFlags) (*nacos.Renewer, func(), error) {
	if len(f.dataIDs) == 0 {
		return nil, nil, errors.New("--data-id is required with --nacos-server")
	}
	user := f.nacosUser
	if user == "" {
		user = a.getenv("NACOS_USERNAME")
	}
	ak := f.nacosAccessKey
	if ak == "" {
		ak = a.getenv("NACOS_ACCESS_KEY")
	}
	cfg := nacos.Config{Servers: f.nacosServers, Namespace: f.namespace, Group: f.group, DataIDs: f.dataIDs,
		Dir: f.nacosDir, ResyncInterval: -1, AppName: "kmsctl"}
	var err error
	if user != "" {
		cfg.Username = user
		if cfg.Password, err = a.secret(f.nacosPasswordFile, "NACOS_PASSWORD"); err != nil {
			return nil, nil, err
		}
	}
	if ak != "" {
		cfg.AccessKey = ak
		if cfg.SecretKey, err = a.secret(f.nacosSecretFile, "NACOS_SECRET_KEY"); err != nil {
			return nil, nil, err
		}
	}
	cleanup := func() {}
	if cfg.Dir == "" {
		dir, err := os.MkdirTemp("", "kmsctl-nacos-")
		if err != nil {
			return nil, nil, err
		}
		cfg.Dir = dir
		cleanup = func() { _ = os.RemoveAll(dir) }
	}
	src, err := nacos.New(cfg)
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	r, err := nacos.NewRenewer(src, nacos.RenewerOptions{Attempts: f.attempts})
	if err != nil {
		_ = src.Close()
		cleanup()
		return nil, nil, err
	}
	return r, func() { _ = src.Close(); cleanup() }, nil
}

// etcdTLS builds the client TLS configuration from --etcd-cacert,
// --etcd-cert and --etcd-key (nil when none is given).
func etcdTLS(f *renewFlags) (*tls.Config, error) {
	if f.etcdCACert == "" && f.etcdCert == "" && f.etcdKey == "" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if f.etcdCACert != "" {
		pem, err := os.ReadFile(f.etcdCACert)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--etcd-cacert %s holds no PEM certificate", f.etcdCACert)
		}
		cfg.RootCAs = pool
	}
	if (f.etcdCert == "") != (f.etcdKey == "") {
		return nil, errors.New("--etcd-cert and --etcd-key go together")
	}
	if f.etcdCert != "" {
		pair, err := tls.LoadX509KeyPair(f.etcdCert, f.etcdKey)
		if err != nil {
			return nil, fmt.Errorf("etcd client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}
