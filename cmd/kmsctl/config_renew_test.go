package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kmsgo/kmsgo/configcenter/etcd/etcdtest"
	"github.com/kmsgo/kmsgo/configcenter/nacos/nacostest"
	"github.com/kmsgo/kmsgo/starter/kmsclient"
)

var renewEncRe = regexp.MustCompile(`ENC\(([A-Za-z0-9+/=]+)\)`)

// renewCheck decrypts every ENC value of text through kmsd and returns the
// key versions and plaintexts.
func renewCheck(t *testing.T, kc *kmsclient.Client, text string) ([]int, []string) {
	t.Helper()
	var vs []int
	var pts []string
	for _, m := range renewEncRe.FindAllStringSubmatch(text, -1) {
		blob, _ := base64.StdEncoding.DecodeString(m[1])
		res, err := kc.Decrypt(context.Background(), blob, nil)
		if err != nil {
			t.Fatal(err)
		}
		vs = append(vs, res.KeyVersion)
		pts = append(pts, string(res.Plaintext))
	}
	return vs, pts
}

type renewReportJSON struct {
	DryRun    bool `json:"dry_run"`
	Documents int  `json:"documents"`
	Written   int  `json:"written"`
	Scanned   int  `json:"scanned"`
	Renewed   int  `json:"renewed"`
	Skipped   int  `json:"skipped"`
	Failed    int  `json:"failed"`
}

func TestConfigRenewEtcd(t *testing.T) {
	srv, c := configured(t)
	kc, err := kmsclient.New(kmsclient.Config{Endpoint: srv.URL, AccessKeyID: srv.AccessKeyID, SecretAccessKey: srv.SecretAccessKey, Region: srv.Region})
	if err != nil {
		t.Fatal(err)
	}
	var k keyJSON
	c.json(&k, "keys", "create", "--alias", "alias/app-config")
	enc := strings.TrimSpace(c.ok("s3cret\n", "enc", "--key", "alias/app-config"))
	encCtx := strings.TrimSpace(c.ok("", "enc", "--key", "alias/app-config", "--context", "app=orders", "tok"))
	e := etcdtest.Start(t)
	cli := e.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	doc := "# orders\ndb:\n  password: " + enc + "   # yearly\n"
	if _, err := cli.Put(ctx, "/cfg/orders.yaml", doc); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx, "/ctx/token", encCtx); err != nil {
		t.Fatal(err)
	}
	c.ok("", "keys", "rotate", k.KeyID)

	// Dry run: lists, writes nothing.
	code, out, errs := c.run("", "config", "renew", "--etcd-endpoints", e.Endpoint, "--key", "/cfg/orders.yaml", "--dry-run")
	if code != 0 || !strings.Contains(out, "Would renew:") || !strings.Contains(errs, "/cfg/orders.yaml:3: "+k.KeyID+" v1 -> v2 would-renew") {
		t.Fatalf("dry run: %d\n%s\n%s", code, out, errs)
	}
	if resp, _ := cli.Get(ctx, "/cfg/orders.yaml"); string(resp.Kvs[0].Value) != doc {
		t.Fatal("dry run wrote")
	}

	var rep renewReportJSON
	c.json(&rep, "config", "renew", "--etcd-endpoints", e.Endpoint, "--key", "/cfg/orders.yaml", "-q")
	if rep.Written != 1 || rep.Renewed != 1 || rep.Scanned != 1 || rep.Failed != 0 || rep.DryRun {
		t.Fatalf("report %+v", rep)
	}
	resp, _ := cli.Get(ctx, "/cfg/orders.yaml")
	got := string(resp.Kvs[0].Value)
	if renewEncRe.ReplaceAllString(got, "*") != renewEncRe.ReplaceAllString(doc, "*") || got == doc {
		t.Fatalf("layout changed or not renewed:\n%s", got)
	}
	if vs, pts := renewCheck(t, kc, got); vs[0] != 2 || pts[0] != "s3cret" {
		t.Fatalf("versions %v", vs)
	}

	// A value made with --context fails without it (reported, kept, exit 1)
	// and is renewed with it.
	code, _, errs = c.run("", "config", "renew", "--etcd-endpoints", e.Endpoint, "--prefix", "/ctx/")
	if code == 0 || !strings.Contains(errs, "failed") || !strings.Contains(errs, "renewal incomplete") {
		t.Fatalf("no context: %d %s", code, errs)
	}
	if resp, _ := cli.Get(ctx, "/ctx/token"); string(resp.Kvs[0].Value) != encCtx {
		t.Fatal("an undecryptable value was changed")
	}
	c.ok("", "config", "renew", "--etcd-endpoints", e.Endpoint, "--prefix", "/ctx/", "--context", "app=orders")
	resp, _ = cli.Get(ctx, "/ctx/token")
	blob, _ := base64.StdEncoding.DecodeString(renewEncRe.FindStringSubmatch(string(resp.Kvs[0].Value))[1])
	if res, err := kc.Decrypt(ctx, blob, map[string]string{"app": "orders"}); err != nil || res.KeyVersion != 2 || string(res.Plaintext) != "tok" {
		t.Fatalf("context value: %v", err)
	}

	notPEM := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.fail(1, "holds no PEM certificate", "", "config", "renew", "--etcd-endpoints", e.Endpoint, "--key", "/x", "--etcd-cacert", notPEM)
	c.fail(1, "--etcd-cert and --etcd-key go together", "", "config", "renew", "--etcd-endpoints", e.Endpoint, "--key", "/x", "--etcd-cert", notPEM)
	c.fail(1, "exactly one of --key and --prefix", "", "config", "renew", "--etcd-endpoints", e.Endpoint)
	c.fail(1, "either --etcd-endpoints or --nacos-server", "", "config", "renew")
}

func TestConfigRenewNacos(t *testing.T) {
	srv, c := configured(t)
	kc, err := kmsclient.New(kmsclient.Config{Endpoint: srv.URL, AccessKeyID: srv.AccessKeyID, SecretAccessKey: srv.SecretAccessKey, Region: srv.Region})
	if err != nil {
		t.Fatal(err)
	}
	var k keyJSON
	c.json(&k, "keys", "create")
	enc := strings.TrimSpace(c.ok("", "enc", "--key", k.KeyID, "pw"))
	const user, pass = "ops", "nacos-Secret-9f2"
	n := nacostest.StartT(t, nacostest.Options{Username: user, Password: pass})
	doc := "# props\ndb.password=" + enc + "\nplain=1\n"
	n.Publish("prod", "ORDERS", "orders.properties", doc)
	c.ok("", "keys", "rotate", k.KeyID)

	passFile := filepath.Join(t.TempDir(), "nacos-pass")
	if err := os.WriteFile(passFile, []byte(pass+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.env["NACOS_USERNAME"] = user
	args := []string{"config", "renew", "--nacos-server", n.Addr(), "--namespace", "prod", "--group", "ORDERS",
		"--data-id", "orders.properties", "--nacos-password-file", passFile, "--nacos-dir", t.TempDir()}
	code, out, errs := c.run("", append(args, "-o", "json")...)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	if strings.Contains(out+errs, pass) {
		t.Fatal("the Nacos password was printed")
	}
	var rep renewReportJSON
	if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.Written != 1 || rep.Renewed != 1 {
		t.Fatalf("report %s %v", out, err)
	}
	got, _ := n.Get("prod", "ORDERS", "orders.properties")
	if vs, pts := renewCheck(t, kc, got); got == doc || vs[0] != 2 || pts[0] != "pw" ||
		renewEncRe.ReplaceAllString(got, "*") != renewEncRe.ReplaceAllString(doc, "*") {
		t.Fatalf("stored:\n%s", got)
	}
	// Wrong password: refused, nothing printed of it.
	c.env["NACOS_PASSWORD"] = "wrong-password-77"
	code, out, errs = c.run("", append(args[:len(args)-4], "--nacos-dir", t.TempDir())...)
	if code == 0 || strings.Contains(out+errs, "wrong-password-77") {
		t.Fatalf("wrong password: %d\n%s\n%s", code, out, errs)
	}
}
