package starter_test

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"

	"github.com/kmsgo/kmsgo/starter"
)

func metric(t *testing.T, reg *prometheus.Registry, name string) (float64, bool) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		m := mf.GetMetric()[0]
		switch mf.GetType() {
		case dto.MetricType_COUNTER:
			return m.GetCounter().GetValue(), true
		case dto.MetricType_GAUGE:
			return m.GetGauge().GetValue(), true
		}
	}
	return 0, false
}

// An App with both config-center sources, a database, a rotation and a
// config change behind it: Close leaves no goroutine of its own (servers
// started before are ignored), unregisters its metrics, and a second Close
// is a no-op.
func TestCloseLeavesNoGoroutine(t *testing.T) {
	e := newEnv(t)
	et, nc := etcdStore(t, e), nacosStore(t, e)
	dsn := sqliteDSN(e, "")
	et.publish("db:\n  dsn: " + e.enc(dsn) + "\nfeature: {name: a}\n")
	nc.publish("feature: {name: b}\n")
	ignore := goleak.IgnoreCurrent()

	yml := e.write("kmsgo.yaml", "kms: {endpoint: "+e.srv.URL+"}\nconfig:\n  sources: [etcd, nacos]\n"+et.settings+nc.settings+
		"database:\n  driver: sqlite\n  dsn_path: db.dsn\n  orm: {key_id: alias/app}\n")
	reg := prometheus.NewRegistry()
	app, err := starter.Start(context.Background(), starter.File(yml), starter.WithEnviron(e.environ()), starter.WithRegisterer(reg))
	if err != nil {
		t.Fatal(err)
	}
	if got := app.Config().Snapshot().String("feature.name", ""); got != "b" {
		t.Fatalf("merge order: feature.name = %q, want the later source's", got)
	}
	if err := app.DB().AutoMigrate(&customer{}); err != nil {
		t.Fatal(err)
	}
	if err := app.DB().Create(&customer{Name: "x", Email: "x@example.com"}).Error; err != nil {
		t.Fatal(err)
	}
	et.publish("db:\n  dsn: " + e.enc(sqliteDSN(e, "&_cache_size=-4000")) + "\nfeature: {name: a}\n")
	waitFor(t, "rotation", func() bool { v, _ := metric(t, reg, "kmsgo_starter_db_rotations_total"); return v == 1 })
	if v, _ := metric(t, reg, "kmsgo_starter_db_pool_generation"); v != 2 {
		t.Fatalf("pool generation %v", v)
	}
	if v, ok := metric(t, reg, "kmsgo_starter_config_reloads_total"); !ok || v < 1 {
		t.Fatalf("config reloads %v %v", v, ok)
	}
	if h := app.Health(context.Background()); !h.OK || len(h.Components) != 5 {
		t.Fatalf("health %+v", h)
	}
	if err := app.Close(); err != nil {
		t.Fatal(err)
	}
	if err := app.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := metric(t, reg, "kmsgo_starter_db_rotations_total"); ok {
		t.Fatal("metrics still registered after Close")
	}
	goleak.VerifyNone(t, ignore)
}
