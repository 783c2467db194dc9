package starter_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kmsgo/kmsgo/configcenter/etcd/etcdtest"
	"github.com/kmsgo/kmsgo/configcenter/nacos/nacostest"
	"github.com/kmsgo/kmsgo/server/dbtest"
	"github.com/kmsgo/kmsgo/starter"
	_ "github.com/kmsgo/kmsgo/starter/etcd"
	_ "github.com/kmsgo/kmsgo/starter/mysql"
	_ "github.com/kmsgo/kmsgo/starter/nacos"
	_ "github.com/kmsgo/kmsgo/starter/postgres"
)

// store is a config center a test writes to: the YAML of the starter's
// config section for it, and a way to replace the whole document.
type store struct {
	settings string // YAML under config:, without sources
	kind     string
	publish  func(doc string)
}

func etcdStore(t *testing.T, e *env) store {
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	return store{
		kind:     "etcd",
		settings: fmt.Sprintf("  etcd: {endpoints: [%s], keys: [/app/config.yaml]}\n", srv.Endpoint),
		publish: func(doc string) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if _, err := cli.Put(ctx, "/app/config.yaml", doc); err != nil {
				t.Error(err)
			}
		},
	}
}

func nacosStore(t *testing.T, e *env) store {
	srv := nacostest.StartT(t, nacostest.Options{})
	return store{
		kind:     "nacos",
		settings: fmt.Sprintf("  nacos: {servers: [%s], data_ids: [app.yaml], dir: %s/nacos}\n", srv.Addr(), e.dir),
		publish:  func(doc string) { srv.Publish("", "DEFAULT_GROUP", "app.yaml", doc) },
	}
}

// harmless returns dsn with a parameter that changes nothing for the test
// but makes it a different DSN for the same database.
func harmless(dialect, dsn string) string {
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	switch dialect {
	case dbtest.MySQL:
		return dsn + sep + "timeout=30s"
	case dbtest.Postgres:
		return dsn + sep + "application_name=kmsgo-rotated"
	}
	return dsn + sep + "_cache_size=-4000"
}

func unreachable(dialect, dir string) string {
	switch dialect {
	case dbtest.MySQL:
		return "root:@tcp(127.0.0.1:1)/test?timeout=2s"
	case dbtest.Postgres:
		return "postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=2"
	}
	return "file:" + dir + "/no/such/dir/x.db?mode=ro"
}

func TestDSNRotationEtcd(t *testing.T) {
	for _, d := range dbtest.Dialects(t) {
		t.Run(d, func(t *testing.T) {
			e := newEnv(t)
			testDSNRotation(t, e, etcdStore(t, e), d)
		})
	}
}

func TestDSNRotationNacos(t *testing.T) {
	for _, d := range dbtest.Dialects(t) {
		t.Run(d, func(t *testing.T) {
			e := newEnv(t)
			testDSNRotation(t, e, nacosStore(t, e), d)
		})
	}
}

// testDSNRotation rotates the DSN in the config center while writers and
// readers run: no request fails, the old pool is closed, and a bad DSN
// afterwards keeps the current pool and reports the error.
func testDSNRotation(t *testing.T, e *env, st store, dialect string) {
	dsn1, _ := dbtest.OpenDSN(t, dialect)
	dsn2 := harmless(dialect, dsn1)
	doc := func(dsn string) string { return "db:\n  dsn: " + e.enc(dsn) + "\n" }
	st.publish(doc(dsn1))
	yml := e.write("kmsgo.yaml", "kms: {endpoint: "+e.srv.URL+"}\nconfig:\n  sources: ["+st.kind+"]\n"+st.settings+
		"database:\n  driver: "+dialect+"\n  dsn_path: db.dsn\n  drain_timeout: 20s\n  orm: {key_id: alias/app}\n")
	var reported atomic.Value
	app, err := starter.Start(context.Background(), starter.File(yml), starter.WithEnviron(e.environ()),
		starter.WithOnError(func(err error) { reported.Store(err.Error()) }))
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	db := app.DB() // kept across the rotation on purpose
	if err := db.AutoMigrate(&customer{}); err != nil {
		t.Fatal(err)
	}
	oldPool, err := db.DB()
	if err != nil {
		t.Fatal(err)
	}

	var ops, fails atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				email := fmt.Sprintf("w%d-%d@example.com", w, i)
				c := customer{Name: fmt.Sprintf("w%d", w), Email: email}
				err := db.Create(&c).Error
				if err == nil {
					var got customer
					if err = db.First(&got, c.ID).Error; err == nil && got.Email != email {
						err = fmt.Errorf("read %q, want %q", got.Email, email)
					}
				}
				if err == nil && i%10 == 0 {
					err = db.Transaction(func(tx *gormDB) error {
						var n int64
						return tx.Model(&customer{}).Count(&n).Error
					})
				}
				if err != nil {
					fails.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				}
				ops.Add(1)
			}
		}()
	}
	waitFor(t, "some requests", func() bool { return ops.Load() > 20 })
	st.publish(doc(dsn2))
	waitFor(t, "the pool rotation", func() bool { return dbHealth(t, app).LastChange.After(time.Time{}) })
	before := ops.Load()
	waitFor(t, "requests on the new pool", func() bool { return ops.Load() > before+20 })
	close(stop)
	wg.Wait()
	if n := fails.Load(); n != 0 {
		t.Fatalf("%d of %d requests failed during the rotation; first: %v", n, ops.Load(), firstErr.Load())
	}
	// Close runs in the background: wait for it to refuse work and to have
	// closed every connection.
	waitFor(t, "the old pool to close", func() bool {
		return isSQLClosed(oldPool.Ping()) && oldPool.Stats().OpenConnections == 0
	})
	newPool, _ := db.DB()
	if newPool == oldPool || newPool.Ping() != nil {
		t.Fatal("no new working pool")
	}
	var count int64
	if err := db.Model(&customer{}).Count(&count).Error; err != nil || count < before {
		t.Fatalf("count %d (%v), want >= %d: not the same database", count, err, before)
	}

	// A bad DSN keeps the current pool and reports the error.
	st.publish(doc(unreachable(dialect, e.dir)))
	waitFor(t, "the rotation error", func() bool { return dbHealth(t, app).LastError != "" })
	if p, _ := db.DB(); p != newPool {
		t.Fatal("a bad DSN replaced the pool")
	}
	if err := db.Create(&customer{Name: "after", Email: "after@example.com"}).Error; err != nil {
		t.Fatalf("write after a bad DSN: %v", err)
	}
	h := dbHealth(t, app)
	if !h.OK || !strings.Contains(h.LastError, "db.dsn") {
		t.Fatalf("database health %+v", h)
	}
	// The health record and the WithOnError callback are two steps of the
	// failed rotation: wait for the second as well.
	waitFor(t, "the rotation error reported to WithOnError", func() bool {
		r, _ := reported.Load().(string)
		return r != ""
	})
	if err := app.Close(); err != nil {
		t.Fatal(err)
	}
	if newPool.Ping() == nil {
		t.Fatal("Close left the pool open")
	}
}

func dbHealth(t *testing.T, app *starter.App) starter.ComponentHealth {
	t.Helper()
	for _, c := range app.Health(context.Background()).Components {
		if c.Name == "database" {
			return c
		}
	}
	t.Fatal("no database in Health")
	return starter.ComponentHealth{}
}
