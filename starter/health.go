package starter

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/kmsgo/kmsgo/configcenter"
)

// Health is the state of every component, for a readiness probe.
type Health struct {
	// OK is true when kmsd is ready and the database answers a ping.
	// Config sources do not decide it: while a source is down the App keeps
	// its last good configuration, and taking every replica out of service
	// because etcd or Nacos is briefly unreachable would turn a config-center
	// outage into a service outage. Their state is reported below.
	OK         bool              `json:"ok"`
	Components []ComponentHealth `json:"components"`
}

// ComponentHealth is one component: "kms", "config", "config/<source
// name>" (config/etcd:/app/config.yaml, config/file:app.yaml, ...) or
// "database".
type ComponentHealth struct {
	Name string `json:"name"`
	OK   bool   `json:"ok"`
	// Error is the current problem (a failed check).
	Error string `json:"error,omitempty"`
	// LastChange is when the component last changed (a source's last
	// loaded state, the config's last applied snapshot, the database's
	// last pool rotation).
	LastChange time.Time `json:"last_change,omitzero"`
	// Revision is a source's last revision.
	Revision string `json:"revision,omitempty"`
	// LastError and LastErrorAt are the last problem reported after
	// start-up (a source error, a rejected change, a failed rotation).
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
}

// Health checks kmsd (/readyz), pings the database and reports each config
// source's last change and last error.
func (a *App) Health(ctx context.Context) Health {
	var h Health
	k := ComponentHealth{Name: "kms", OK: true}
	if err := a.kmsReady(ctx); err != nil {
		k.OK, k.Error = false, err.Error()
	}
	h.Components = append(h.Components, k)
	if a.cfg != nil {
		c := ComponentHealth{Name: "config", OK: true, LastChange: a.cfg.Snapshot().LoadedAt()}
		a.cfgMu.Lock()
		if a.cfgErr != nil {
			c.LastError, c.LastErrorAt = a.cfgErr.Error(), a.cfgErrAt
		}
		a.cfgMu.Unlock()
		h.Components = append(h.Components, c)
		for _, s := range a.srcs {
			h.Components = append(h.Components, s.health())
		}
	}
	if a.db != nil {
		d := ComponentHealth{Name: "database", OK: true}
		if err := a.db.ping(ctx); err != nil {
			d.OK, d.Error = false, err.Error()
		}
		a.db.mu.Lock()
		d.LastChange = a.db.swappedAt
		if a.db.lastErr != nil {
			d.LastError, d.LastErrorAt = a.db.lastErr.Error(), a.db.lastErrAt
		}
		a.db.mu.Unlock()
		h.Components = append(h.Components, d)
	}
	h.OK = true
	for _, c := range h.Components {
		if !c.OK && (c.Name == "kms" || c.Name == "database") {
			h.OK = false
		}
	}
	return h
}

// HealthHandler serves Health as JSON: 200 when OK, 503 otherwise. Errors
// name components and paths, never values.
func (a *App) HealthHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := a.Health(r.Context())
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		if !h.OK {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_ = json.NewEncoder(w).Encode(h)
	})
}

// trackedSource records a source's last change and last error for Health.
type trackedSource struct {
	configcenter.Source
	kind string

	mu        sync.Mutex
	changedAt time.Time
	revision  string
	lastErr   error
	lastErrAt time.Time
}

func (t *trackedSource) changed(st configcenter.State) {
	t.mu.Lock()
	t.changedAt, t.revision = time.Now(), st.Revision
	t.mu.Unlock()
}

func (t *trackedSource) failed(err error) {
	t.mu.Lock()
	t.lastErr, t.lastErrAt = err, time.Now()
	t.mu.Unlock()
}

func (t *trackedSource) Load(ctx context.Context) (configcenter.State, error) {
	st, err := t.Source.Load(ctx)
	if err != nil {
		t.failed(err)
		return st, err
	}
	t.changed(st)
	return st, nil
}

func (t *trackedSource) Watch(ctx context.Context, onChange func(configcenter.State), onError func(error)) error {
	err := t.Source.Watch(ctx,
		func(st configcenter.State) { t.changed(st); onChange(st) },
		func(err error) { t.failed(err); onError(err) })
	if err != nil {
		t.failed(err)
	}
	return err
}

func (t *trackedSource) health() ComponentHealth {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := ComponentHealth{Name: "config/" + t.Name(), OK: true, LastChange: t.changedAt, Revision: t.revision}
	if t.lastErr != nil {
		c.LastError, c.LastErrorAt = t.lastErr.Error(), t.lastErrAt
		// Healthy again once a state arrived after the error.
		c.OK = t.changedAt.After(t.lastErrAt)
	}
	return c
}
