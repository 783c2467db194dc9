// Command configcenter-nacos shows a Go service reading its config from
// Nacos with configcenter: one dataId holds a YAML file whose secrets are
// ENC(...) values made by `kmsctl enc`; the service gets them decrypted,
// and again after every change, without a restart. It is the Nacos twin of
// examples/configcenter-etcd.
//
// Run it against a local kmsd (make run) and a Nacos 2.x server:
//
//	printf '%s' 's3cret-db-password' | kmsctl enc --key alias/orders-config   # -> ENC(...)
//	cat > app.yaml <<EOF
//	db:
//	  user: orders
//	  password: ENC(...)        # paste the output of kmsctl enc
//	EOF
//	go run ./examples/configcenter-nacos --credentials .kmsgo-data/admin-credentials.json \
//	    --server 127.0.0.1:8848 --group ORDERS --dataid orders.yaml --put app.yaml --follow 3
//
// (--put publishes app.yaml as the dataId first, with the Nacos SDK; the
// Nacos console or its open API do the same.) The kmsd connection may also
// come from KMS_ENDPOINT, KMS_ACCESS_KEY_ID, KMS_SECRET_ACCESS_KEY and
// KMS_REGION; Nacos credentials from NACOS_USERNAME and NACOS_PASSWORD (or
// NACOS_ACCESS_KEY and NACOS_SECRET_KEY), never from Nacos itself. The
// Nacos SDK's cache and log go to --dir (created 0700) and hold only what
// Nacos stores: ENC values stay ciphertext there. The program never prints
// a secret: it prints its length and a hash prefix.
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
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/nacos-group/nacos-sdk-go/v2/clients"
	"github.com/nacos-group/nacos-sdk-go/v2/common/constant"
	"github.com/nacos-group/nacos-sdk-go/v2/vo"

	"github.com/kmsgo/kmsgo/configcenter"
	"github.com/kmsgo/kmsgo/configcenter/nacos"
	"github.com/kmsgo/kmsgo/starter/kmsclient"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "configcenter-nacos:", err)
		os.Exit(1)
	}
}

// DB is the part of the config the service binds to a struct.
type DB struct {
	User     string `koanf:"user"`
	Password string `koanf:"password"` // ENC(...) in Nacos, plaintext here
	Pool     int    `koanf:"pool"`
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("configcenter-nacos", flag.ContinueOnError)
	credFile := fs.String("credentials", "", "kmsd credentials JSON (e.g. .kmsgo-data/admin-credentials.json); default: KMS_* environment")
	endpoint := fs.String("endpoint", "", "kmsd URL (default KMS_ENDPOINT or http://127.0.0.1:8400)")
	server := fs.String("server", "127.0.0.1:8848", "Nacos HTTP address(es), comma separated (gRPC is port+1000)")
	namespace := fs.String("namespace", "", "Nacos namespace id (empty: public)")
	group := fs.String("group", "ORDERS", "Nacos group")
	dataID := fs.String("dataid", "orders.yaml", "dataId(s), comma separated, later ones win; the format comes from the suffix")
	dir := fs.String("dir", defaultDir(), "private directory for the Nacos SDK's cache and log (created 0700)")
	put := fs.String("put", "", "publish this file as the (first) dataId first")
	follow := fs.Int("follow", 0, "wait for this many changes of db.* and print each (0: print once and exit)")
	resync := fs.Duration("resync", 0, "re-read the dataIds this often even without a push (0: the source's default, 1m)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	client, err := newClient(*credFile, *endpoint)
	if err != nil {
		return err
	}
	servers := strings.Split(*server, ",")
	dataIDs := strings.Split(*dataID, ",")
	if *put != "" {
		if err := publish(ctx, servers, *namespace, *group, dataIDs[0], *put, *dir); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "published %s to Nacos as %s (group %s)\n", *put, dataIDs[0], *group)
	}

	// 1. The source: the dataIds of one namespace and group. It never
	// decrypts; its disk cache holds ciphertext only.
	src, err := nacos.New(nacos.Config{
		Servers:        servers,
		Namespace:      *namespace,
		Group:          *group,
		DataIDs:        dataIDs,
		Username:       os.Getenv("NACOS_USERNAME"),
		Password:       os.Getenv("NACOS_PASSWORD"),
		AccessKey:      os.Getenv("NACOS_ACCESS_KEY"),
		SecretKey:      os.Getenv("NACOS_SECRET_KEY"),
		Dir:            *dir,
		ResyncInterval: *resync,
	})
	if err != nil {
		return err
	}
	// 2. The config: loads, decrypts every ENC value through kmsd (in
	// batches), and fails here, naming the path, if one cannot be
	// decrypted. cfg.Close closes the source too.
	cfg, err := configcenter.New(ctx, configcenter.Options{
		Sources:   []configcenter.Source{src},
		Decrypter: client,
		OnError:   func(err error) { fmt.Fprintln(stdout, "change rejected, keeping the last good config:", err) },
	})
	if err != nil {
		return err // New has closed the source
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

// publish stores a file as a dataId with the Nacos SDK (what the Nacos
// console's "publish" does). It runs before nacos.New, whose redacting
// logger then replaces the SDK's process-wide one.
func publish(ctx context.Context, servers []string, namespace, group, dataID, file, dir string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	var sc []constant.ServerConfig
	for _, s := range servers {
		scheme, hostPort, found := strings.Cut(s, "://")
		if !found {
			scheme, hostPort = "http", s
		}
		host, portStr, err := net.SplitHostPort(strings.TrimSuffix(hostPort, "/"))
		if err != nil {
			return fmt.Errorf("--server %q: %w", s, err)
		}
		port, err := strconv.ParseUint(portStr, 10, 16)
		if err != nil || port == 0 {
			return fmt.Errorf("--server %q: bad port", s)
		}
		sc = append(sc, constant.ServerConfig{Scheme: scheme, IpAddr: host, Port: port, ContextPath: "/nacos"})
	}
	pubDir := filepath.Join(dir, "publish")
	if err := os.MkdirAll(pubDir, 0o700); err != nil {
		return err
	}
	cc := constant.ClientConfig{
		NamespaceId: namespace, TimeoutMs: 10_000, NotLoadCacheAtStart: true,
		CacheDir: filepath.Join(pubDir, "cache"), LogDir: filepath.Join(pubDir, "log"), LogLevel: "error",
		Username: os.Getenv("NACOS_USERNAME"), Password: os.Getenv("NACOS_PASSWORD"),
		AccessKey: os.Getenv("NACOS_ACCESS_KEY"), SecretKey: os.Getenv("NACOS_SECRET_KEY"),
	}
	pub, err := clients.NewConfigClient(vo.NacosClientParam{ClientConfig: &cc, ServerConfigs: sc})
	if err != nil {
		return fmt.Errorf("nacos client: %w", err)
	}
	defer pub.CloseClient()
	ok, err := pub.PublishConfig(vo.ConfigParam{DataId: dataID, Group: group, Content: string(data)})
	if err == nil && !ok {
		err = errors.New("refused")
	}
	if err != nil {
		return fmt.Errorf("nacos publish %s: %w", dataID, err)
	}
	return ctx.Err()
}

// describe shows that a secret was decrypted without showing it.
func describe(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return fmt.Sprintf("%d characters, sha256 %s…", len(secret), hex.EncodeToString(sum[:4]))
}

func defaultDir() string {
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "kmsgo", "nacos")
	}
	return filepath.Join(os.TempDir(), "kmsgo-nacos")
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
