package etcd_test

import (
	"context"
	"encoding/base64"
	"regexp"
	"strconv"
	"strings"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/kmsgo/kmsgo/configcenter"
	"github.com/kmsgo/kmsgo/configcenter/etcd"
	"github.com/kmsgo/kmsgo/configcenter/etcd/etcdtest"
	"github.com/kmsgo/kmsgo/starter/kmsclient"
)

var encRe = regexp.MustCompile(`ENC\(([A-Za-z0-9+/=]+)\)`)

// encValues returns the ciphertext headers of the ENC values in text, in order.
func encValues(t *testing.T, text string) []kmsclient.CiphertextHeader {
	t.Helper()
	var out []kmsclient.CiphertextHeader
	for _, m := range encRe.FindAllStringSubmatch(text, -1) {
		blob, err := base64.StdEncoding.DecodeString(m[1])
		if err != nil {
			t.Fatal(err)
		}
		h, err := kmsclient.ParseCiphertextHeader(blob)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, h)
	}
	return out
}

// decryptAll decrypts every ENC value of text in order.
func (k *kms) decryptAll(t *testing.T, text string) []string {
	t.Helper()
	var out []string
	for _, m := range encRe.FindAllStringSubmatch(text, -1) {
		blob, _ := base64.StdEncoding.DecodeString(m[1])
		res, err := k.client.Decrypt(context.Background(), blob, nil)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(res.Plaintext))
	}
	return out
}

// outside replaces the base64 content of every marker with "*": what must
// stay byte for byte the same across a renewal.
func outside(text string) string { return encRe.ReplaceAllString(text, "ENC(*)") }

func TestRenewKeyDocument(t *testing.T) {
	k := startKMS(t)
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	ctx := ctxT(t)

	r1 := k.enc(t, "r1")
	current := k.enc(t, "already-current") // re-encrypted below after the rotation
	doc := "# database settings\n" +
		"db:\n" +
		"  user: app   # not secret\n" +
		"  password: " + k.enc(t, "s3cret") + "   # rotated yearly\n" +
		"  replicas: [" + r1 + ", " + r1 + "]\n" +
		"url: jdbc:mysql://u:" + k.enc(t, "pw2") + "@db/app\n" +
		"# old: " + current + "\n"
	if _, err := cli.Put(ctx, "/app/config.yaml", doc); err != nil {
		t.Fatal(err)
	}
	if _, err := k.client.RotateKey(ctx, k.keyID); err != nil {
		t.Fatal(err)
	}
	fresh := k.enc(t, "fresh") // under version 2 already
	doc2 := doc + "fresh: " + fresh + "\n"
	if _, err := cli.Put(ctx, "/app/config.yaml", doc2); err != nil {
		t.Fatal(err)
	}

	doc3 := doc2 + "# broken: ENC(AAAA)\n"
	if _, err := cli.Put(ctx, "/app/config.yaml", doc3); err != nil {
		t.Fatal(err)
	}
	brokenLine := strings.Count(doc3, "\n")
	// A running application watching the key.
	src, err := etcd.New(cli, etcd.Options{Key: "/app/config.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	app, err := configcenter.New(ctx, configcenter.Options{Sources: []configcenter.Source{src}, Decrypter: k.client,
		Logger: quiet, EmbeddedMarkers: true})
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	before := app.Snapshot()

	// Dry run: counts, writes nothing.
	r, err := etcd.NewRenewer(cli, etcd.RenewerOptions{Key: "/app/config.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := r.Renew(ctx, configcenter.RenewOptions{Client: k.client, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Scanned != 7 || rep.Renewed != 5 || rep.Skipped != 1 || rep.Failed != 1 || rep.Written != 0 {
		t.Fatalf("dry run report: %+v", rep)
	}
	if got := get(t, cli, "/app/config.yaml"); got != doc3 {
		t.Fatal("dry run changed the stored value")
	}

	var events []configcenter.RenewEvent
	rep, err = r.Renew(ctx, configcenter.RenewOptions{Client: k.client, OnValue: func(ev configcenter.RenewEvent) { events = append(events, ev) }})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Scanned != 7 || rep.Renewed != 5 || rep.Skipped != 1 || rep.Failed != 1 || rep.Written != 1 || rep.Conflicts != 0 {
		t.Fatalf("report: %+v", rep)
	}
	if len(rep.Failures) != 1 || rep.Failures[0].Line != brokenLine || rep.Err() == nil {
		t.Fatalf("failures: %+v", rep.Failures)
	}
	if len(events) != 7 {
		t.Fatalf("%d events", len(events))
	}
	got := get(t, cli, "/app/config.yaml")
	if outside(got) != outside(doc3) {
		t.Fatalf("text outside the markers changed:\n%s\n---\n%s", outside(doc3), outside(got))
	}
	if !strings.Contains(got, "# broken: ENC(AAAA)\n") {
		t.Fatal("the malformed value was not kept as is")
	}
	for i, h := range encValues(t, strings.Replace(got, "ENC(AAAA)", "", 1)) {
		if h.KeyID != k.keyID || h.KeyVersion != 2 {
			t.Fatalf("value %d: %+v", i, h)
		}
	}
	want := k.decryptAll(t, strings.Replace(doc3, "ENC(AAAA)", "", 1))
	if gotPT := k.decryptAll(t, strings.Replace(got, "ENC(AAAA)", "", 1)); strings.Join(gotPT, "|") != strings.Join(want, "|") {
		t.Fatalf("plaintexts changed: %q vs %q", gotPT, want)
	}
	if !strings.Contains(got, fresh) {
		t.Fatal("a value already under the primary version was rewritten")
	}
	// Equal ciphertexts stay equal (one ReEncrypt for both).
	vals := encRe.FindAllString(got, -1)
	if vals[1] != vals[2] {
		t.Fatal("duplicate ciphertexts renewed differently")
	}

	// The running application sees the renewed revision, same plaintext.
	resp, _ := cli.Get(ctx, "/app/config.yaml")
	rev := strconv.FormatInt(resp.Header.Revision, 10)
	eventually(t, "the app to apply the renewed value", func() bool {
		rs := app.Snapshot().Revisions()
		return len(rs) == 1 && rs[0] == rev
	})
	snap := app.Snapshot()
	for _, p := range []string{"db.password", "url", "fresh", "db.user"} {
		if snap.String(p, "?") != before.String(p, "!") {
			t.Fatalf("%s changed for the application", p)
		}
	}
	if snap.String("db.password", "") != "s3cret" {
		t.Fatal("wrong plaintext")
	}

	// A second run has nothing left but the malformed value.
	rep, err = r.Renew(ctx, configcenter.RenewOptions{Client: k.client})
	if err != nil || rep.Renewed != 0 || rep.Skipped != 6 || rep.Failed != 1 || rep.Written != 0 {
		t.Fatalf("second run: %+v %v", rep, err)
	}
}

func get(t *testing.T, cli *clientv3.Client, key string) string {
	t.Helper()
	resp, err := cli.Get(context.Background(), key)
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("get %s: %v", key, err)
	}
	return string(resp.Kvs[0].Value)
}

// An operator's edit between the renewal's read and its write wins: the
// write fails its compare-and-swap, the renewal re-reads and renews what the
// operator wrote, keeping the operator's values.
func TestRenewConflictKeepsConcurrentEdit(t *testing.T) {
	k := startKMS(t)
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	ctx := ctxT(t)
	oldA, oldB := k.enc(t, "a"), k.enc(t, "b")
	if _, err := cli.Put(ctx, "/c/app.properties", "a="+oldA+"\nb="+oldB+"\n"); err != nil {
		t.Fatal(err)
	}
	if _, err := k.client.RotateKey(ctx, k.keyID); err != nil {
		t.Fatal(err)
	}
	operator := "a=" + k.enc(t, "a-changed-by-operator") + "\n# kept\nb=" + oldB + "\n"
	edits := 0
	r, err := etcd.NewRenewer(cli, etcd.RenewerOptions{Key: "/c/app.properties", BeforeWrite: func(string) {
		if edits == 0 {
			if _, err := cli.Put(ctx, "/c/app.properties", operator); err != nil {
				t.Error(err)
			}
		}
		edits++
	}})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := r.Renew(ctx, configcenter.RenewOptions{Client: k.client})
	if err != nil {
		t.Fatal(err)
	}
	if edits != 2 || rep.Conflicts != 1 || rep.Written != 1 || rep.Renewed != 1 || rep.Skipped != 1 || rep.Scanned != 2 || rep.Err() != nil {
		t.Fatalf("edits %d, report %+v", edits, rep)
	}
	got := get(t, cli, "/c/app.properties")
	if outside(got) != outside(operator) || !strings.HasPrefix(got, "a="+encRe.FindString(operator)+"\n") {
		t.Fatalf("the operator's edit was overwritten:\n%s", got)
	}
	if pts := k.decryptAll(t, got); strings.Join(pts, ",") != "a-changed-by-operator,b" {
		t.Fatalf("plaintexts %q", pts)
	}
	for _, h := range encValues(t, got) {
		if h.KeyVersion != 2 {
			t.Fatalf("left under version %d", h.KeyVersion)
		}
	}

	// A key that changes before every write is left to the operator.
	if _, err := cli.Put(ctx, "/c/app.properties", "a="+oldA+"\n"); err != nil {
		t.Fatal(err)
	}
	n := 0
	r, _ = etcd.NewRenewer(cli, etcd.RenewerOptions{Key: "/c/app.properties", Attempts: 3, BeforeWrite: func(string) {
		n++
		if _, err := cli.Put(ctx, "/c/app.properties", "a="+oldA+"\n# edit "+strconv.Itoa(n)+"\n"); err != nil {
			t.Error(err)
		}
	}})
	rep, err = r.Renew(ctx, configcenter.RenewOptions{Client: k.client})
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 || rep.GaveUp != 1 || rep.Conflicts != 3 || rep.Written != 0 || rep.Err() == nil {
		t.Fatalf("n %d report %+v", n, rep)
	}
	if got := get(t, cli, "/c/app.properties"); got != "a="+oldA+"\n# edit 3\n" {
		t.Fatalf("last edit lost: %q", got)
	}
}

// Prefix layout: every key under the prefix is renewed, values with a lease
// keep it, keys outside the prefix are untouched.
func TestRenewPrefix(t *testing.T) {
	k := startKMS(t)
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	ctx := ctxT(t)
	lease, err := cli.Grant(ctx, 3600)
	if err != nil {
		t.Fatal(err)
	}
	vals := map[string]string{"/p/db/password": "pw", "/p/api/token": "tok", "/p/plain": ""}
	for key, pt := range vals {
		v := "not secret"
		if pt != "" {
			v = k.enc(t, pt)
		}
		if _, err := cli.Put(ctx, key, v, clientv3.WithLease(lease.ID)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cli.Put(ctx, "/q/other", k.enc(t, "outside the prefix")); err != nil {
		t.Fatal(err)
	}
	if _, err := k.client.RotateKey(ctx, k.keyID); err != nil {
		t.Fatal(err)
	}
	r, err := etcd.NewRenewer(cli, etcd.RenewerOptions{Prefix: "/p/"})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := r.Renew(ctx, configcenter.RenewOptions{Client: k.client})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Documents != 3 || rep.Written != 2 || rep.Renewed != 2 || rep.Scanned != 2 {
		t.Fatalf("report %+v", rep)
	}
	for key, pt := range vals {
		resp, _ := cli.Get(ctx, key)
		if resp.Kvs[0].Lease != int64(lease.ID) {
			t.Fatalf("%s lost its lease", key)
		}
		if pt == "" {
			continue
		}
		if hs := encValues(t, string(resp.Kvs[0].Value)); hs[0].KeyVersion != 2 {
			t.Fatalf("%s not renewed", key)
		}
		if got := k.decryptAll(t, string(resp.Kvs[0].Value)); got[0] != pt {
			t.Fatalf("%s: plaintext changed", key)
		}
	}
	if hs := encValues(t, get(t, cli, "/q/other")); hs[0].KeyVersion != 1 {
		t.Fatal("a key outside the prefix was renewed")
	}
}
