// Command configcenter-etcd shows a Go service reading its config from
// etcd with configcenter: one etcd key holds a YAML file whose secrets are
// ENC(...) values made by `kmsctl enc`; the service gets them decrypted,
// and again after every change, without a restart.
//
// Run it against a local kmsd (make run) and etcd:
//
//	printf '%s' 's3cret-db-password' | kmsctl enc --key alias/orders-config   # -> ENC(...)
//	cat > app.yaml <<EOF
//	db:
//	  user: orders
//	  password: ENC(...)        # paste the output of kmsctl enc
//	EOF
//	go run ./examples/configcenter-etcd --credentials .kmsgo-data/admin-credentials.json \
//	    --etcd http://127.0.0.1:2379 --key /orders/app.yaml --put app.yaml --follow 3
//
// (--put stores app.yaml in etcd first; `etcdctl put /orders/app.yaml "$(cat app.yaml)"`
// does the same.) The kmsd connection may also come from KMS_ENDPOINT,
// KMS_ACCESS_KEY_ID, KMS_SECRET_ACCESS_KEY and KMS_REGION. The program
// never prints a secret: it prints its length and a hash prefix.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/kmsgo/kmsgo/configcenter"
	"github.com/kmsgo/kmsgo/configcenter/etcd"
	"github.com/kmsgo/kmsgo/starter/kmsclient"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "configcenter-etcd:", err)
		os.Exit(1)
	}
}

// DB is the part of the config the service binds to a struct.
type DB struct {
	User     string `koanf:"user"`
	Password string `koanf:"password"` // ENC(...) in etcd, plaintext here
	Pool     int    `koanf:"pool"`
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("configcenter-etcd", flag.ContinueOnError)
	credFile := fs.String("credentials", "", "kmsd credentials JSON (e.g. .kmsgo-data/admin-credentials.json); default: KMS_* environment")
	endpoint := fs.String("endpoint", "", "kmsd URL (default KMS_ENDPOINT or http://127.0.0.1:8400)")
	etcdURL := fs.String("etcd", "http://127.0.0.1:2379", "etcd endpoint")
	key := fs.String("key", "/orders/app.yaml", "etcd key holding the YAML config")
	put := fs.String("put", "", "store this file under --key first")
	follow := fs.Int("follow", 0, "wait for this many changes of db.* and print each (0: print once and exit)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	client, err := newClient(*credFile, *endpoint)
	if err != nil {
		return err
	}

	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{*etcdURL}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return err
	}
	defer cli.Close()
	if *put != "" {
		data, err := os.ReadFile(*put)
		if err != nil {
			return err
		}
		if _, err := cli.Put(ctx, *key, string(data)); err != nil {
			return fmt.Errorf("etcd put: %w", err)
		}
		fmt.Fprintf(stdout, "stored %s in etcd under %s\n", *put, *key)
	}

	// 1. The source: one etcd key holding a YAML document.
	src, err := etcd.New(cli, etcd.Options{Key: *key})
	if err != nil {
		return err
	}
	// 2. The config: loads, decrypts every ENC value through kmsd (in
	// batches), and fails here, naming the path, if one cannot be
	// decrypted. A Cached client would serve repeated ciphertexts from memory.
	cfg, err := configcenter.New(ctx, configcenter.Options{
		Sources:   []configcenter.Source{src},
		Decrypter: client,
		OnError:   func(err error) { fmt.Fprintln(stdout, "change rejected, keeping the last good config:", err) },
	})
	if err != nil {
		return err
	}
	defer cfg.Close()

	// 3. Read: bind a struct, or use the typed getters.
	var db DB
	if err := cfg.Snapshot().BindPath("db", &db); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "db.user=%s db.pool=%d db.password: %s\n", db.User, db.Pool, describe(db.Password))

	// 4. Follow changes: WatchAs gets the old and new value of db.
	changes := make(chan DB, 16)
	stop := configcenter.WatchAs(cfg, "db", func(_, newDB DB) { changes <- newDB })
	defer stop()
	for i := 0; i < *follow; i++ {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case db := <-changes:
			fmt.Fprintf(stdout, "changed: db.user=%s db.pool=%d db.password: %s\n", db.User, db.Pool, describe(db.Password))
		}
	}
	return nil
}

// describe shows that a secret was decrypted without showing it.
func describe(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return fmt.Sprintf("%d characters, sha256 %s…", len(secret), hex.EncodeToString(sum[:4]))
}

func newClient(credFile, endpoint string) (*kmsclient.Client, error) {
	cfg := kmsclient.Config{
		Endpoint:        os.Getenv("KMS_ENDPOINT"),
		AccessKeyID:     os.Getenv("KMS_ACCESS_KEY_ID"),
		SecretAccessKey: os.Getenv("KMS_SECRET_ACCESS_KEY"),
		Region:          os.Getenv("KMS_REGION"),
	}
	if credFile != "" {
		b, err := os.ReadFile(credFile)
		if err != nil {
			return nil, err
		}
		var f struct {
			AccessKeyID     string `json:"access_key_id"`
			SecretAccessKey string `json:"secret_access_key"`
			Region          string `json:"region"`
			Endpoint        string `json:"endpoint"`
		}
		if err := json.Unmarshal(b, &f); err != nil {
			return nil, fmt.Errorf("%s: not a credentials file", credFile)
		}
		cfg.AccessKeyID, cfg.SecretAccessKey, cfg.Region = f.AccessKeyID, f.SecretAccessKey, f.Region
		if f.Endpoint != "" {
			cfg.Endpoint = f.Endpoint
		}
	}
	if endpoint != "" {
		cfg.Endpoint = endpoint
	}
	if cfg.Endpoint == "" {
		cfg.Endpoint = "http://127.0.0.1:8400" // make run
	}
	if cfg.AccessKeyID == "" || cfg.SecretAccessKey == "" {
		return nil, errors.New("no credentials: pass --credentials .kmsgo-data/admin-credentials.json or set KMS_ACCESS_KEY_ID and KMS_SECRET_ACCESS_KEY")
	}
	return kmsclient.New(cfg)
}
