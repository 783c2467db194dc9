package nacos_test

import (
	"context"
	"encoding/base64"
	"errors"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kmsgo/kmsgo/configcenter"
	"github.com/kmsgo/kmsgo/configcenter/nacos"
	"github.com/kmsgo/kmsgo/configcenter/nacos/nacostest"
	"github.com/kmsgo/kmsgo/server/kmstest"
	"github.com/kmsgo/kmsgo/starter/kmsclient"
)

var encRe = regexp.MustCompile(`ENC\(([A-Za-z0-9+/=]+)\)`)

func renewKMS(t *testing.T) (*kmsclient.Client, string) {
	t.Helper()
	kms := kmstest.Start(t)
	kc, err := kmsclient.New(kmsclient.Config{Endpoint: kms.URL, AccessKeyID: kms.AccessKeyID, SecretAccessKey: kms.SecretAccessKey, Region: kms.Region})
	if err != nil {
		t.Fatal(err)
	}
	key, err := kc.CreateKey(context.Background(), kmsclient.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	return kc, key.KeyID
}

// versionsAndPlaintexts reads every ENC value of text: its key version and
// its plaintext (through kmsd).
func versionsAndPlaintexts(t *testing.T, kc *kmsclient.Client, text string) ([]int, []string) {
	t.Helper()
	var vs []int
	var pts []string
	for _, m := range encRe.FindAllStringSubmatch(text, -1) {
		blob, err := base64.StdEncoding.DecodeString(m[1])
		if err != nil {
			t.Fatal(err)
		}
		h, err := kmsclient.ParseCiphertextHeader(blob)
		if err != nil {
			t.Fatal(err)
		}
		res, err := kc.Decrypt(context.Background(), blob, nil)
		if err != nil {
			t.Fatal(err)
		}
		vs = append(vs, h.KeyVersion)
		pts = append(pts, string(res.Plaintext))
	}
	return vs, pts
}

func outside(text string) string { return encRe.ReplaceAllString(text, "ENC(*)") }

func TestRenewNacos(t *testing.T) {
	kc, keyID := renewKMS(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv := nacostest.StartT(t, nacostest.Options{})
	yaml := "# orders service\ndb:\n  password: " + encValue(t, kc, keyID, "s3cret") + "  # yearly\n  user: orders\n"
	props := "# comment\napi.token = " + encValue(t, kc, keyID, "tok") + "\nplain=1\n"
	srv.Publish(ns(t), grp, "renew-orders.yaml", yaml)
	srv.Publish(ns(t), grp, "renew-secrets.properties", props)
	if _, err := kc.RotateKey(ctx, keyID); err != nil {
		t.Fatal(err)
	}

	// A running application.
	app, err := configcenter.New(ctx, configcenter.Options{
		Sources:   []configcenter.Source{newSource(t, baseConfig(t, srv, "renew-orders.yaml", "renew-secrets.properties"))},
		Decrypter: kc, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	before := app.Snapshot().Revisions()[0]

	r, err := nacos.NewRenewer(newSource(t, baseConfig(t, srv, "renew-orders.yaml", "renew-secrets.properties", "renew-missing.yaml")), nacos.RenewerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := r.Renew(ctx, configcenter.RenewOptions{Client: kc, DryRun: true})
	if err != nil || rep.Renewed != 2 || rep.Written != 0 || rep.Scanned != 2 {
		t.Fatalf("dry run: %+v %v", rep, err)
	}
	if got, _ := srv.Get(ns(t), grp, "renew-orders.yaml"); got != yaml {
		t.Fatal("dry run published")
	}
	rep, err = r.Renew(ctx, configcenter.RenewOptions{Client: kc})
	if err != nil || rep.Renewed != 2 || rep.Written != 2 || rep.Scanned != 2 || rep.Failed != 0 || rep.Err() != nil {
		t.Fatalf("renew: %+v %v", rep, err)
	}
	for id, old := range map[string]string{"renew-orders.yaml": yaml, "renew-secrets.properties": props} {
		got, _ := srv.Get(ns(t), grp, id)
		if got == old || outside(got) != outside(old) {
			t.Fatalf("%s: not renewed or layout changed:\n%s", id, got)
		}
		vs, pts := versionsAndPlaintexts(t, kc, got)
		_, oldPts := versionsAndPlaintexts(t, kc, old)
		if vs[0] != 2 || pts[0] != oldPts[0] {
			t.Fatalf("%s: version %d, plaintext kept %v", id, vs[0], pts[0] == oldPts[0])
		}
	}
	eventually(t, "the app to apply the renewed values", func() bool {
		return app.Snapshot().Revisions()[0] != before
	})
	if s := app.Snapshot(); s.String("db.password", "") != "s3cret" || s.String("api.token", "") != "tok" {
		t.Fatal("the application's plaintexts changed")
	}
	// Nothing left to renew.
	rep, err = r.Renew(ctx, configcenter.RenewOptions{Client: kc})
	if err != nil || rep.Renewed != 0 || rep.Skipped != 2 || rep.Written != 0 {
		t.Fatalf("second run: %+v %v", rep, err)
	}
}

// A publish between the renewal's read and its compare-and-swap publish
// wins; the renewal re-reads and renews what the operator published.
func TestRenewNacosConflict(t *testing.T) {
	kc, keyID := renewKMS(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv := nacostest.StartT(t, nacostest.Options{})
	oldB := encValue(t, kc, keyID, "b")
	srv.Publish(ns(t), grp, "renew-conflict.properties", "a="+encValue(t, kc, keyID, "a")+"\nb="+oldB+"\n")
	if _, err := kc.RotateKey(ctx, keyID); err != nil {
		t.Fatal(err)
	}
	operator := "a=" + encValue(t, kc, keyID, "a-by-operator") + "\n# edited\nb=" + oldB + "\n"
	edits := 0
	r, err := nacos.NewRenewer(newSource(t, baseConfig(t, srv, "renew-conflict.properties")), nacos.RenewerOptions{BeforeWrite: func(string) {
		if edits == 0 {
			srv.Publish(ns(t), grp, "renew-conflict.properties", operator)
		}
		edits++
	}})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := r.Renew(ctx, configcenter.RenewOptions{Client: kc})
	if err != nil || edits != 2 || rep.Conflicts != 1 || rep.Written != 1 || rep.Renewed != 1 || rep.Skipped != 1 {
		t.Fatalf("edits %d report %+v %v", edits, rep, err)
	}
	got, _ := srv.Get(ns(t), grp, "renew-conflict.properties")
	if outside(got) != outside(operator) || !strings.HasPrefix(got, "a="+encRe.FindString(operator)) {
		t.Fatalf("operator's publish overwritten:\n%s", got)
	}
	vs, pts := versionsAndPlaintexts(t, kc, got)
	if vs[0] != 2 || vs[1] != 2 || pts[0] != "a-by-operator" || pts[1] != "b" {
		t.Fatalf("versions %v plaintexts %q", vs, pts)
	}

	// Always edited before the publish: left to the operator.
	n := 0
	r, _ = nacos.NewRenewer(newSource(t, baseConfig(t, srv, "renew-conflict.properties")), nacos.RenewerOptions{Attempts: 2, BeforeWrite: func(string) {
		n++
		srv.Publish(ns(t), grp, "renew-conflict.properties", "b="+oldB+"\n#"+strings.Repeat("x", n)+"\n")
	}})
	srv.Publish(ns(t), grp, "renew-conflict.properties", "b="+oldB+"\n")
	rep, err = r.Renew(ctx, configcenter.RenewOptions{Client: kc})
	if err != nil || n != 2 || rep.GaveUp != 1 || rep.Written != 0 || rep.Err() == nil {
		t.Fatalf("n %d report %+v %v", n, rep, err)
	}
	if got, _ := srv.Get(ns(t), grp, "renew-conflict.properties"); got != "b="+oldB+"\n#xx\n" {
		t.Fatal("last edit lost")
	}
}

// kmsd unreachable: the run stops with ErrKMSUnavailable and publishes
// nothing.
func TestRenewNacosKMSDown(t *testing.T) {
	kc, keyID := renewKMS(t)
	srv := nacostest.StartT(t, nacostest.Options{})
	doc := "a: " + encValue(t, kc, keyID, "x") + "\n"
	srv.Publish(ns(t), grp, "renew-down.yaml", doc)
	if _, err := kc.RotateKey(context.Background(), keyID); err != nil {
		t.Fatal(err)
	}
	down, err := kmsclient.New(kmsclient.Config{Endpoint: "http://127.0.0.1:1", AccessKeyID: "AK", SecretAccessKey: "SK", MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	r, _ := nacos.NewRenewer(newSource(t, baseConfig(t, srv, "renew-down.yaml")), nacos.RenewerOptions{})
	publishes := srv.Requests("ConfigPublishRequest")
	rep, err := r.Renew(context.Background(), configcenter.RenewOptions{Client: down})
	if !errors.Is(err, configcenter.ErrKMSUnavailable) || rep.Written != 0 {
		t.Fatalf("%+v %v", rep, err)
	}
	if got, _ := srv.Get(ns(t), grp, "renew-down.yaml"); got != doc || srv.Requests("ConfigPublishRequest") != publishes {
		t.Fatal("published while kmsd was down")
	}
}
