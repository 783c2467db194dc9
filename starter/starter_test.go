package starter_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kmsgo/kmsgo/configcenter"
	"github.com/kmsgo/kmsgo/starter"
	_ "github.com/kmsgo/kmsgo/starter/sqlite"
)

type customer struct {
	ID    uint
	Name  string
	Email string `gorm:"serializer:kms;size:255"`
}

func sqliteDSN(e *env, extra string) string {
	return "file:" + e.dir + "/app.db?_journal_mode=WAL&_busy_timeout=10000" + extra
}

// A file source with an ENC value, a SQLite database with ormplugin: the
// value is decrypted, the field is stored encrypted, Health is OK, Close
// is idempotent.
func TestStartFileSQLite(t *testing.T) {
	e := newEnv(t)
	cfgPath := e.write("app.yaml", "greeting: hello\napi:\n  token: "+e.enc("canary-token-123")+"\n")
	yml := e.write("kmsgo.yaml", `
kms: {endpoint: `+e.srv.URL+`}
config:
  sources: [file]
  file: {path: `+cfgPath+`, poll_interval: 50ms}
database:
  driver: sqlite
  dsn: "`+sqliteDSN(e, "")+`"
  orm: {key_id: alias/app}
`)
	ctx := context.Background()
	app, err := starter.Start(ctx, starter.File(yml), starter.WithEnviron(e.environ()))
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	if got := app.Config().Snapshot().String("api.token", ""); got != "canary-token-123" {
		t.Fatalf("api.token = %q", got)
	}
	db := app.DB()
	if err := db.AutoMigrate(&customer{}); err != nil {
		t.Fatal(err)
	}
	if err := db.Create(&customer{Name: "Ada", Email: "ada@example.com"}).Error; err != nil {
		t.Fatal(err)
	}
	var raw string
	if err := db.Raw("SELECT email FROM customers WHERE name = ?", "Ada").Scan(&raw).Error; err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(raw, "kms1:") || strings.Contains(raw, "ada@") {
		t.Fatalf("stored email is not ciphertext: %q", raw)
	}
	var got customer
	if err := db.First(&got, "name = ?", "Ada").Error; err != nil || got.Email != "ada@example.com" {
		t.Fatalf("read back %+v, %v", got, err)
	}
	if app.KMS() == nil {
		t.Fatal("no KMS client")
	}
	h := app.Health(ctx)
	if !h.OK || len(h.Components) != 4 {
		t.Fatalf("health = %+v", h)
	}
	for _, c := range h.Components {
		if !c.OK {
			t.Fatalf("component %s not ok: %+v", c.Name, c)
		}
		if strings.HasPrefix(c.Name, "config/file:") && c.LastChange.IsZero() {
			t.Fatalf("source has no last change: %+v", c)
		}
	}
	rec := httptest.NewRecorder()
	app.HealthHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if rec.Code != http.StatusOK || strings.Contains(rec.Body.String(), "canary") {
		t.Fatalf("health handler: %d %s", rec.Code, rec.Body)
	}
	if err := app.Close(); err != nil {
		t.Fatal(err)
	}
	if err := app.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// A change in the config center is visible through app.Config(), a bound
// struct and a WatchAs callback, decrypted.
func TestConfigChangeVisible(t *testing.T) {
	e := newEnv(t)
	cfgPath := e.write("app.yaml", "feature:\n  name: one\n  secret: "+e.enc("first-secret")+"\n")
	yml := e.write("kmsgo.yaml", "kms: {endpoint: "+e.srv.URL+"}\nconfig:\n  sources: [file]\n  file: {path: "+cfgPath+", poll_interval: 20ms}\n")
	app, err := starter.Start(context.Background(), starter.File(yml), starter.WithEnviron(e.environ()))
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	type feature struct {
		Name   string `koanf:"name"`
		Secret string `koanf:"secret"`
	}
	changes := make(chan feature, 4)
	cancel := configcenter.WatchAs(app.Config(), "feature", func(_, n feature) { changes <- n })
	defer cancel()

	e.write("app.yaml", "feature:\n  name: two\n  secret: "+e.enc("second-secret")+"\n")
	select {
	case f := <-changes:
		if f.Name != "two" || f.Secret != "second-secret" {
			t.Fatalf("callback got %+v", f)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no change callback")
	}
	var f feature
	if err := app.Config().Snapshot().BindPath("feature", &f); err != nil || f.Secret != "second-secret" {
		t.Fatalf("bound %+v, %v", f, err)
	}
	if got := app.Config().Snapshot().String("feature.name", ""); got != "two" {
		t.Fatalf("feature.name = %q", got)
	}
}

func closedURL(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

// Each component's failure stops start-up with an error naming the
// component and the config path; nothing is left open (goleak in
// TestMain).
func TestStartFailures(t *testing.T) {
	e := newEnv(t)
	good := e.write("good.yaml", "db:\n  dsn: \""+sqliteDSN(e, "")+"\"\n")
	badENC := e.write("badenc.yaml", "db:\n  password: ENC(AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA)\n")
	tests := []struct {
		name      string
		yaml      string
		component string
		path      string
		is        error
	}{
		{name: "kmsd down", yaml: "kms: {endpoint: " + closedURL(t) + ", timeout: 2s}\n", component: "kms", path: "kms.endpoint"},
		{name: "config source down", yaml: "kms: {endpoint: " + e.srv.URL + "}\nconfig: {sources: [file], file: {path: " + e.dir + "/missing.yaml}}\n",
			component: "config", path: "config.file"},
		{name: "etcd down", yaml: "kms: {endpoint: " + e.srv.URL + "}\nconfig: {sources: [etcd], start_timeout: 3s, etcd: {endpoints: [" + strings.TrimPrefix(closedURL(t), "http://") + "], keys: [/app/config.yaml]}}\n",
			component: "config", path: "config.etcd"},
		{name: "nacos down", yaml: "kms: {endpoint: " + e.srv.URL + "}\nconfig: {sources: [nacos], start_timeout: 10s, nacos: {servers: [" + strings.TrimPrefix(closedURL(t), "http://") + "], data_ids: [app.yaml], dir: " + e.dir + "/nacos, timeout: 2s}}\n",
			component: "config", path: "config.nacos"},
		{name: "bad ENC value", yaml: "kms: {endpoint: " + e.srv.URL + "}\nconfig: {sources: [file], file: {path: " + badENC + "}}\n",
			component: "config", path: "config value db.password", is: configcenter.ErrDecrypt},
		{name: "bad DSN", yaml: "kms: {endpoint: " + e.srv.URL + "}\nconfig: {sources: [file], file: {path: " + good + "}}\ndatabase: {driver: sqlite, dsn: \"file:" + e.dir + "/no/such/dir/x.db?mode=ro\"}\n",
			component: "database", path: "database.dsn", is: starter.ErrDatabase},
		{name: "DSN path missing", yaml: "kms: {endpoint: " + e.srv.URL + "}\nconfig: {sources: [file], file: {path: " + good + "}}\ndatabase: {driver: sqlite, dsn_path: db.nope}\n",
			component: "database", path: "database.dsn_path (db.nope)", is: starter.ErrConfig},
		{name: "bad ENC DSN", yaml: "kms: {endpoint: " + e.srv.URL + "}\ndatabase: {driver: sqlite, dsn: \"ENC(AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA)\"}\n",
			component: "database", path: "database.dsn"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			yml := e.write("kmsgo.yaml", tc.yaml)
			app, err := starter.Start(context.Background(), starter.File(yml), starter.WithEnviron(e.environ()))
			if err == nil {
				app.Close()
				t.Fatal("Start succeeded")
			}
			var se *starter.StartError
			if !errors.As(err, &se) {
				t.Fatalf("err = %T %v", err, err)
			}
			if se.Component != tc.component || (tc.path != "" && se.Path != tc.path) {
				t.Fatalf("component %q path %q, want %q %q (%v)", se.Component, se.Path, tc.component, tc.path, err)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Fatalf("err = %v, want %v", err, tc.is)
			}
			if strings.Contains(err.Error(), e.srv.SecretAccessKey) {
				t.Fatal("error leaks the secret")
			}
		})
	}
}
