package etcd_test

import (
	"errors"
	"testing"

	"github.com/kmsgo/kmsgo/configcenter"
	"github.com/kmsgo/kmsgo/configcenter/etcd"
	"github.com/kmsgo/kmsgo/configcenter/etcd/etcdtest"
	"github.com/kmsgo/kmsgo/jobs"
	"github.com/kmsgo/kmsgo/server/dbtest"
)

// configcenter.RenewJob scheduled by jobs.Scheduler with a Store: the job
// counts renewed values, a failed source keeps the cursor where the
// failure happened, and the next run resumes from it.
func TestRenewJobWithScheduler(t *testing.T) {
	k := startKMS(t)
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	ctx := ctxT(t)
	put := func(key, v string) {
		t.Helper()
		if _, err := cli.Put(ctx, key, v); err != nil {
			t.Fatal(err)
		}
	}
	put("/job/a.yaml", "a: "+k.enc(t, "1")+"\nb: "+k.enc(t, "2")+"\n")
	oldC, oldD := k.enc(t, "3"), k.enc(t, "4") // version 1, written later
	if _, err := k.client.RotateKey(ctx, k.keyID); err != nil {
		t.Fatal(err)
	}
	ra, _ := etcd.NewRenewer(cli, etcd.RenewerOptions{Key: "/job/a.yaml"})
	rb, _ := etcd.NewRenewer(cli, etcd.RenewerOptions{Key: "/job/b.yaml"}) // missing at first
	store, err := jobs.NewStore(dbtest.Open(t, "sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	var reports []string
	run := configcenter.RenewJob([]configcenter.SourceRenewer{ra, rb}, configcenter.RenewJobOptions{
		Renew:  configcenter.RenewOptions{Client: k.client},
		Cursor: jobs.Cursor, SaveCursor: jobs.SaveCursor,
		OnReport: func(src string, r configcenter.RenewReport) { reports = append(reports, src) },
	})
	s, err := jobs.New(jobs.Config{Store: store}, nil, jobs.Job{Name: "config_renewal", Schedule: "@every 1h", Run: run})
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.RunNow(ctx, "config_renewal")
	if !errors.Is(err, etcd.ErrKeyNotFound) || res.Items != 2 || len(reports) != 2 {
		t.Fatalf("first run: %+v %v %v", res, err, reports)
	}
	st, err := store.Get(ctx, "config_renewal")
	if err != nil || st.Cursor != "1" {
		t.Fatalf("cursor %q %v", st.Cursor, err)
	}
	if hs := encValues(t, get(t, cli, "/job/a.yaml")); hs[0].KeyVersion != 2 || hs[1].KeyVersion != 2 {
		t.Fatal("a.yaml not renewed")
	}

	// b appears; a gets an old value again. The next run resumes at b.
	put("/job/b.yaml", "c: "+oldC)
	oldA := "a: " + oldD
	put("/job/a.yaml", oldA)
	res, err = s.RunNow(ctx, "config_renewal")
	if err != nil || res.Items != 1 {
		t.Fatalf("resumed run: %+v %v", res, err)
	}
	if get(t, cli, "/job/a.yaml") != oldA {
		t.Fatal("the resumed run did not start at the cursor")
	}
	if hs := encValues(t, get(t, cli, "/job/b.yaml")); hs[0].KeyVersion != 2 {
		t.Fatal("b.yaml not renewed")
	}
	// A successful run cleared the cursor: the next one covers everything.
	if st, _ := store.Get(ctx, "config_renewal"); st.Cursor != "" {
		t.Fatalf("cursor %q after success", st.Cursor)
	}
	res, err = s.RunNow(ctx, "config_renewal")
	if err != nil || res.Items != 1 {
		t.Fatalf("third run: %+v %v", res, err)
	}
	if hs := encValues(t, get(t, cli, "/job/a.yaml")); hs[0].KeyVersion != 2 {
		t.Fatal("a.yaml not renewed by the full run")
	}
}
