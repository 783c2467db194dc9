package starter_test

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/kmsgo/kmsgo/starter"
)

func component(t *testing.T, h starter.Health, prefix string) starter.ComponentHealth {
	t.Helper()
	for _, c := range h.Components {
		if strings.HasPrefix(c.Name, prefix) {
			return c
		}
	}
	t.Fatalf("no component %s in %+v", prefix, h)
	return starter.ComponentHealth{}
}

// At run time a source that fails and a change that does not decrypt show
// in Health (last error) without taking the App out of service; the last
// good configuration stays; a good change heals both.
func TestHealthReportsRuntimeProblems(t *testing.T) {
	e := newEnv(t)
	cfgPath := e.write("app.yaml", "api:\n  token: "+e.enc("good-token")+"\n")
	yml := e.write("kmsgo.yaml", "kms: {endpoint: "+e.srv.URL+"}\nconfig:\n  sources: [file]\n  file: {path: "+cfgPath+", poll_interval: 20ms}\n")
	ctx := context.Background()
	app, err := starter.Start(ctx, starter.File(yml), starter.WithEnviron(e.environ()))
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()

	// The source fails (file gone).
	if err := os.Remove(cfgPath); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the source error", func() bool { return component(t, app.Health(ctx), "config/file:").LastError != "" })
	h := app.Health(ctx)
	if !h.OK || component(t, h, "config/file:").OK {
		t.Fatalf("health %+v: a source outage must show on the source only", h)
	}
	if got := app.Config().Snapshot().String("api.token", ""); got != "good-token" {
		t.Fatalf("api.token = %q after the source failed", got)
	}

	// A change that does not decrypt is rejected.
	e.write("app.yaml", "api:\n  token: ENC(AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA)\n")
	waitFor(t, "the rejected change, named by its path", func() bool {
		return strings.Contains(component(t, app.Health(ctx), "config").LastError, "api.token")
	})
	if got := app.Config().Snapshot().String("api.token", ""); got != "good-token" {
		t.Fatalf("api.token = %q after a bad change", got)
	}

	// A good change applies; the source is healthy again.
	e.write("app.yaml", "api:\n  token: "+e.enc("new-token")+"\n")
	waitFor(t, "the good change", func() bool { return app.Config().Snapshot().String("api.token", "") == "new-token" })
	if c := component(t, app.Health(ctx), "config/file:"); !c.OK {
		t.Fatalf("source still unhealthy: %+v", c)
	}
	// kmsd down: Health fails.
	e.srv.HTTP.Close()
	if h := app.Health(ctx); h.OK || component(t, h, "kms").OK {
		t.Fatalf("health with kmsd down: %+v", h)
	}
}
