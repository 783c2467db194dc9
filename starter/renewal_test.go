package starter_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/kmsgo/kmsgo/jobs"
	"github.com/kmsgo/kmsgo/ormplugin"
	"github.com/kmsgo/kmsgo/server/dbtest"
	"github.com/kmsgo/kmsgo/starter"
)

func renewalYAML(e *env, driver, dsn, renewal string) string {
	return e.write(fmt.Sprintf("kmsgo-%d.yaml", time.Now().UnixNano()), `
kms: {endpoint: `+e.srv.URL+`}
database:
  driver: `+driver+`
  dsn: "`+dsn+`"
  orm: {key_id: alias/app}
  renewal: `+renewal+`
`)
}

func rawCustomerEmails(t *testing.T, db *gormDB) map[uint]string {
	t.Helper()
	var rows []struct {
		ID    uint
		Email string
	}
	if err := db.Table("customers").Select("id, email").Order("id").Scan(&rows).Error; err != nil {
		t.Fatal(err)
	}
	out := map[uint]string{}
	for _, r := range rows {
		out[r.ID] = r.Email
	}
	return out
}

// Two application instances on one database, both scheduling the renewal:
// the period runs once, on one of them, and both see its state; a manual
// run then goes through the same lease.
func TestRenewalRunsOncePerPeriodAcrossInstances(t *testing.T) {
	for _, dialect := range dbtest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			dsn, _ := dbtest.OpenDSN(t, dialect)
			if dialect == dbtest.SQLite {
				dsn = sqliteDSN(e, "")
			}
			// The application writes 20 rows, then the master key rotates.
			seeder, err := starter.Start(ctx, starter.File(renewalYAML(e, dialect, dsn, "{}")), starter.WithEnviron(e.environ()))
			if err != nil {
				t.Fatal(err)
			}
			if err := seeder.DB().AutoMigrate(&customer{}); err != nil {
				t.Fatal(err)
			}
			const n = 20
			for i := range n {
				if err := seeder.DB().Create(&customer{Name: fmt.Sprint(i), Email: fmt.Sprintf("c%d@example.com", i)}).Error; err != nil {
					t.Fatal(err)
				}
			}
			before := rawCustomerEmails(t, seeder.DB())
			if err := seeder.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := e.admin.RotateKey(ctx, "alias/app"); err != nil {
				t.Fatal(err)
			}

			yml := renewalYAML(e, dialect, dsn, "{schedule: '@every 1h', mode: reencrypt, batch_size: 7, lease_ttl: 2s}")
			var apps []*starter.App
			for range 2 {
				app, err := starter.Start(ctx, starter.File(yml), starter.WithEnviron(e.environ()), starter.WithRenewalModels(&customer{}))
				if err != nil {
					t.Fatal(err)
				}
				defer app.Close()
				apps = append(apps, app)
			}
			var st jobs.JobState
			waitFor(t, "the scheduled renewal", func() bool {
				st, err = apps[0].RenewalState(ctx)
				return err == nil && st.Runs >= 1 && st.Holder == ""
			})
			time.Sleep(300 * time.Millisecond) // the other instance's catch-up has long decided
			for i, app := range apps {
				st, err := app.RenewalState(ctx)
				if err != nil || st.Runs != 1 || st.LastOutcome != "ok" || st.LastItems != n+1 /* 1 key, n values */ || st.Cursor != "" ||
					st.Schedule != "@every 1h" || time.Until(st.NextRun()) < 50*time.Minute {
					t.Fatalf("instance %d sees %+v %v", i, st, err)
				}
			}
			after := rawCustomerEmails(t, apps[1].DB())
			for id, raw := range before {
				if after[id] == raw {
					t.Fatalf("row %d was not re-encrypted", id)
				}
			}
			for i := range n {
				var c customer
				if err := apps[1].DB().First(&c, "name = ?", fmt.Sprint(i)).Error; err != nil || c.Email != fmt.Sprintf("c%d@example.com", i) {
					t.Fatalf("row %d after renewal: %+v %v", i, c, err)
				}
			}
			var v1 int64
			if err := apps[0].DB().Table(ormplugin.DataKeyTable).Where("key_version <> 2").Count(&v1).Error; err != nil || v1 != 0 {
				t.Fatalf("%d keys not wrapped under version 2 (%v)", v1, err)
			}

			// A manual run on the other instance: same lease, same state.
			rep, err := apps[1].RunRenewal(ctx)
			if err != nil || rep.Phase != ormplugin.RenewPhaseDone || rep.Values.Renewed != n || rep.Keys.Renewed != 0 || rep.Resumed {
				t.Fatalf("manual run: %+v %v", rep, err)
			}
			if st, err := apps[0].RenewalState(ctx); err != nil || st.Runs != 2 {
				t.Fatalf("state after the manual run: %+v %v", st, err)
			}
		})
	}
}

// Without a schedule nothing runs by itself; RunRenewal re-wraps the keys.
func TestRunRenewalRewrapOnDemand(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	app, err := starter.Start(ctx, starter.File(renewalYAML(e, "sqlite", sqliteDSN(e, ""), "{}")), starter.WithEnviron(e.environ()))
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	if err := app.DB().AutoMigrate(&customer{}); err != nil {
		t.Fatal(err)
	}
	if err := app.DB().Create(&customer{Name: "Ada", Email: "ada@example.com"}).Error; err != nil {
		t.Fatal(err)
	}
	before := rawCustomerEmails(t, app.DB())
	if _, err := e.admin.RotateKey(ctx, "alias/app"); err != nil {
		t.Fatal(err)
	}
	rep, err := app.RunRenewal(ctx)
	if err != nil || rep.Mode != ormplugin.RenewRewrap || rep.Keys.Renewed != 1 || rep.KMSCalls != 1 {
		t.Fatalf("report %+v %v", rep, err)
	}
	if after := rawCustomerEmails(t, app.DB()); after[1] != before[1] {
		t.Fatal("re-wrap rewrote a row")
	}
	st, err := app.RenewalState(ctx)
	if err != nil || st.Runs != 1 || st.LastItems != 1 {
		t.Fatalf("state %+v %v", st, err)
	}
	if err := app.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := app.RunRenewal(ctx); !errors.Is(err, starter.ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}

func TestRenewalSettingsErrors(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name, renewal string
		models        []any
		component     string
	}{
		{"bad schedule", "{schedule: 'every day'}", nil, "settings"},
		{"time zone", "{schedule: 'CRON_TZ=Europe/Paris 0 3 * * *'}", nil, "settings"},
		{"bad mode", "{mode: shred}", nil, "settings"},
		{"negative batch", "{batch_size: -1}", nil, "settings"},
		{"reencrypt without models", "{schedule: '@every 1h', mode: reencrypt}", nil, "renewal"},
		{"unknown table", "{schedule: '@every 1h', mode: reencrypt, tables: [orders]}", []any{&customer{}}, "renewal"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := starter.Start(context.Background(), starter.File(renewalYAML(e, "sqlite", sqliteDSN(e, ""), tc.renewal)),
				starter.WithEnviron(e.environ()), starter.WithRenewalModels(tc.models...))
			var se *starter.StartError
			if !errors.As(err, &se) || se.Component != tc.component || !errors.Is(err, starter.ErrConfig) {
				t.Fatalf("err = %v, want a %s ErrConfig", err, tc.component)
			}
		})
	}
}
