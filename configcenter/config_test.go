package configcenter_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kmsgo/kmsgo/configcenter"
	"github.com/kmsgo/kmsgo/configcenter/file"
	"github.com/kmsgo/kmsgo/starter/kmsclient"
)

var quiet = (&logBuffer{}).logger()

func fileSource(path string) *file.Source {
	return file.New(path, file.Options{PollInterval: 20 * time.Millisecond})
}

type appConfig struct {
	Server struct {
		Port    int           `koanf:"port"`
		Timeout time.Duration `koanf:"timeout"`
	} `koanf:"server"`
	DB struct {
		User     string `koanf:"user"`
		Password string `koanf:"password"`
	} `koanf:"db"`
	Hosts []string `koanf:"hosts"`
	Debug bool     `koanf:"debug"`
}

// Every format is parsed, sources merge in order (later wins), ENC values
// are decrypted in one batch call, getters and Bind see the plaintext.
func TestNewMergesFormatsAndDecrypts(t *testing.T) {
	k := startKMS(t)
	pw := k.enc(t, "db-s3cret", nil)
	token := k.enc(t, "api-token", nil)
	yml := tempFile(t, "app.yaml", fmt.Sprintf(`
server:
  port: 8080
  timeout: 5s
db:
  user: app
  password: %s
hosts: [a, %s]
debug: false
`, pw, token))
	props := tempFile(t, "override.properties", "# override\nserver.port = 9090\ndebug: true\nextra.list=x, y ,z\n")
	js := tempFile(t, "extra.json", `{"feature": {"ratio": 0.5, "secret": "`+token+`"}}`)
	tml := tempFile(t, "extra.toml", "[limits]\nmax = 7\nname = \"tom\"\n")
	dec := &countingDecrypter{d: k.client}
	c, err := configcenter.New(context.Background(), configcenter.Options{
		Sources:   []configcenter.Source{fileSource(yml), fileSource(props), fileSource(js), fileSource(tml)},
		Decrypter: dec, Logger: quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s := c.Snapshot()
	tests := []struct {
		name string
		got  any
		want any
	}{
		{"yaml encrypted", s.String("db.password", ""), "db-s3cret"},
		{"yaml plain", s.String("db.user", ""), "app"},
		{"properties wins over yaml", s.Int("server.port", 0), 9090},
		{"properties bool", s.Bool("debug", false), true},
		{"duration", s.Duration("server.timeout", 0), 5 * time.Second},
		{"list with ENC", s.Strings("hosts", nil), []string{"a", "api-token"}},
		{"comma list", s.Strings("extra.list", nil), []string{"x", "y", "z"}},
		{"json float", s.Float64("feature.ratio", 0), 0.5},
		{"json encrypted", s.String("feature.secret", ""), "api-token"},
		{"toml int", s.Int64("limits.max", 0), int64(7)},
		{"toml string", s.String("limits.name", ""), "tom"},
		{"missing default", s.String("nope", "dflt"), "dflt"},
		{"missing int default", s.Int("nope", 42), 42},
		{"unparsable int default", s.Int("db.user", -1), -1},
		{"missing duration default", s.Duration("nope", time.Minute), time.Minute},
		{"missing bool default", s.Bool("nope", true), true},
		{"missing strings default", s.Strings("nope", []string{"d"}), []string{"d"}},
		{"subtree is not a string", s.String("db", "dflt"), "dflt"},
		{"string map", s.StringMap("db", nil), map[string]string{"user": "app", "password": "db-s3cret"}},
		{"has", s.Has("feature.secret"), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if fmt.Sprintf("%#v", tc.got) != fmt.Sprintf("%#v", tc.want) {
				t.Fatalf("got %#v, want %#v", tc.got, tc.want)
			}
		})
	}
	// Two distinct ciphertexts (the token twice): one batch call, two items.
	if dec.calls.Load() != 1 || dec.items.Load() != 2 {
		t.Fatalf("decrypt calls/items = %d/%d, want 1/2", dec.calls.Load(), dec.items.Load())
	}
	var cfg appConfig
	if err := c.Bind(&cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Server.Port != 9090 || cfg.Server.Timeout != 5*time.Second || cfg.DB.Password != "db-s3cret" ||
		!cfg.Debug || len(cfg.Hosts) != 2 || cfg.Hosts[1] != "api-token" {
		t.Fatalf("bound %+v", cfg)
	}
}

func TestEmbeddedMarkersAndCustomMarker(t *testing.T) {
	k := startKMS(t)
	pw := k.enc(t, "p@ss", nil)
	b64 := strings.TrimSuffix(strings.TrimPrefix(pw, "ENC("), ")")
	tests := []struct {
		name    string
		opts    configcenter.Options
		content string
		want    string
	}{
		{"embedded off leaves text", configcenter.Options{}, "dsn: 'mysql://u:" + pw + "@db/app'\n", "mysql://u:" + pw + "@db/app"},
		{"embedded on", configcenter.Options{EmbeddedMarkers: true}, "dsn: 'mysql://u:" + pw + "@db/app?x=" + pw + "'\n", "mysql://u:p@ss@db/app?x=p@ss"},
		{"embedded on, whole value", configcenter.Options{EmbeddedMarkers: true}, "dsn: " + pw + "\n", "p@ss"},
		{"embedded on, non-base64 parens stay", configcenter.Options{EmbeddedMarkers: true}, "dsn: 'see ENC(not base64!) " + pw + "'\n", "see ENC(not base64!) p@ss"},
		{"custom marker", configcenter.Options{Marker: configcenter.Marker{Prefix: "{cipher}", Suffix: ""}}, "dsn: '{cipher}" + b64 + "'\n", "p@ss"},
		{"custom marker ignores ENC", configcenter.Options{Marker: configcenter.Marker{Prefix: "[[", Suffix: "]]"}}, "dsn: '" + pw + "'\n", pw},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.opts
			o.Sources = []configcenter.Source{fileSource(tempFile(t, "c.yaml", tc.content))}
			o.Decrypter = k.client
			o.Logger = quiet
			c, err := configcenter.New(context.Background(), o)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if got := c.Snapshot().String("dsn", ""); got != tc.want {
				t.Fatalf("dsn = %q, want %q", got, tc.want)
			}
		})
	}
}

// Start-up fails closed with an error that names the path and the reason
// but never the value (neither plaintext nor ciphertext).
func TestStartupFailsClosed(t *testing.T) {
	k := startKMS(t)
	const canary = "CANARY-startup-7f3a"
	good := k.enc(t, canary, nil)
	withCtx := k.enc(t, canary, map[string]string{"app": "orders"})
	disabledKey, err := k.client.CreateKey(context.Background(), kmsclient.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	out, err := k.client.Encrypt(context.Background(), disabledKey.KeyID, []byte(canary), nil)
	if err != nil {
		t.Fatal(err)
	}
	disabled := "ENC(" + b64(out.CiphertextBlob) + ")"
	if _, err := k.client.DisableKey(context.Background(), disabledKey.KeyID); err != nil {
		t.Fatal(err)
	}
	blob, err := base64.StdEncoding.DecodeString(strings.TrimSuffix(strings.TrimPrefix(good, "ENC("), ")"))
	if err != nil {
		t.Fatal(err)
	}
	blob[len(blob)-1] ^= 1 // flip a bit of the GCM tag
	tampered := "ENC(" + b64(blob) + ")"
	// An unreachable kmsd: a client on a closed port.
	down, _ := kmsclient.New(kmsclient.Config{Endpoint: "http://127.0.0.1:1", AccessKeyID: "a", SecretAccessKey: "b", MaxRetries: -1})

	tests := []struct {
		name    string
		content string
		dec     configcenter.Decrypter
		path    string
		is      []error
	}{
		{"tampered ciphertext", "db:\n  password: " + tampered + "\n", k.client, "db.password", []error{configcenter.ErrDecrypt, kmsclient.ErrInvalidCiphertext}},
		{"wrong encryption context", "db:\n  password: " + withCtx + "\n", k.client, "db.password", []error{configcenter.ErrDecrypt, kmsclient.ErrInvalidCiphertext}},
		{"disabled key", "svc:\n  token: " + disabled + "\n", k.client, "svc.token", []error{configcenter.ErrDecrypt}},
		{"malformed marker", "db:\n  password: ENC(" + canary + "!)\n", k.client, "db.password", []error{configcenter.ErrMalformedMarker}},
		{"empty marker", "db:\n  password: ENC()\n", k.client, "db.password", []error{configcenter.ErrMalformedMarker}},
		{"no decrypter", "db:\n  password: " + good + "\n", nil, "db.password", []error{configcenter.ErrNoDecrypter}},
		{"list element", "hosts:\n  - a\n  - " + tampered + "\n", k.client, "hosts[1]", []error{configcenter.ErrDecrypt}},
		{"kmsd unreachable", "db:\n  password: " + good + "\n", down, "", []error{configcenter.ErrKMSUnavailable}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := fileSource(tempFile(t, "c.yaml", tc.content))
			c, err := configcenter.New(context.Background(), configcenter.Options{
				Sources: []configcenter.Source{src}, Decrypter: tc.dec, Logger: quiet})
			if err == nil {
				c.Close()
				t.Fatal("New succeeded")
			}
			for _, want := range tc.is {
				if !errors.Is(err, want) {
					t.Errorf("error %q does not match %v", err, want)
				}
			}
			if tc.path != "" {
				var pe *configcenter.PathError
				if !errors.As(err, &pe) || pe.Path != tc.path || !strings.Contains(err.Error(), `"`+tc.path+`"`) {
					t.Errorf("error %q does not name path %q", err, tc.path)
				}
			}
			msg := err.Error()
			for _, secret := range []string{canary, strings.TrimPrefix(good, "ENC("), strings.TrimPrefix(tampered, "ENC(")[:20]} {
				if strings.Contains(msg, secret) {
					t.Errorf("error leaks a value: %q", msg)
				}
			}
			if _, err := src.Load(context.Background()); !errors.Is(err, file.ErrClosed) {
				t.Errorf("source not closed after failed New: %v", err)
			}
		})
	}
}

// A change goes through the same decryption as start-up, decrypts only the
// values that changed, and reaches OnChange, Watch and WatchAs with the
// old and new values; Watch on an untouched path stays silent.
func TestChangeCallbacks(t *testing.T) {
	k := startKMS(t)
	a1, b1, a2 := k.enc(t, "alpha-1", nil), k.enc(t, "beta-1", nil), k.enc(t, "alpha-2", nil)
	path := tempFile(t, "app.yaml", "a: "+a1+"\nb: "+b1+"\nport: 1\n")
	dec := &countingDecrypter{d: k.client}
	c, err := configcenter.New(context.Background(), configcenter.Options{
		Sources: []configcenter.Source{fileSource(path)}, Decrypter: dec, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if dec.items.Load() != 2 {
		t.Fatalf("start-up decrypted %d items, want 2", dec.items.Load())
	}

	type change struct{ old, new string }
	var mu sync.Mutex
	var all, onA, onB []change
	var typed []change
	var ports [][2]int
	c.OnChange(func(old, new *configcenter.Snapshot) {
		mu.Lock()
		defer mu.Unlock()
		all = append(all, change{old.String("a", ""), new.String("a", "")})
	})
	c.Watch("a", func(old, new *configcenter.Snapshot) {
		mu.Lock()
		defer mu.Unlock()
		onA = append(onA, change{old.String("a", ""), new.String("a", "")})
	})
	stopB := c.Watch("b", func(old, new *configcenter.Snapshot) {
		mu.Lock()
		defer mu.Unlock()
		onB = append(onB, change{old.String("b", ""), new.String("b", "")})
	})
	configcenter.WatchAs(c, "a", func(old, new string) {
		mu.Lock()
		defer mu.Unlock()
		typed = append(typed, change{old, new})
	})
	configcenter.WatchAs(c, "", func(old, new struct {
		Port int `koanf:"port"`
	}) {
		mu.Lock()
		defer mu.Unlock()
		ports = append(ports, [2]int{old.Port, new.Port})
	})

	writeFile(t, path, "a: "+a2+"\nb: "+b1+"\nport: \"2\"\n")
	eventually(t, "first change", func() bool { return c.Snapshot().String("a", "") == "alpha-2" })
	if n := dec.items.Load(); n != 3 {
		t.Fatalf("after a change of one value, %d items decrypted in total, want 3", n)
	}
	stopB()
	writeFile(t, path, "a: "+a2+"\nb: "+a1+"\nport: 2\n") // b changes, a does not
	eventually(t, "second change", func() bool { return c.Snapshot().String("b", "") == "alpha-1" })
	// a1 was dropped from the cache with the first change: decrypted again.
	if n := dec.items.Load(); n != 4 {
		t.Fatalf("%d items decrypted in total, want 4", n)
	}
	eventually(t, "callbacks", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(all) == 2 && len(ports) == 2
	})
	mu.Lock()
	defer mu.Unlock()
	wantAll := []change{{"alpha-1", "alpha-2"}, {"alpha-2", "alpha-2"}}
	if fmt.Sprint(all) != fmt.Sprint(wantAll) {
		t.Errorf("OnChange saw %v, want %v", all, wantAll)
	}
	if fmt.Sprint(onA) != fmt.Sprint([]change{{"alpha-1", "alpha-2"}}) || fmt.Sprint(typed) != fmt.Sprint(onA) {
		t.Errorf("Watch(a) saw %v, WatchAs saw %v", onA, typed)
	}
	if len(onB) != 0 {
		t.Errorf("Watch(b) saw %v (b did not change before it was cancelled)", onB)
	}
	if fmt.Sprint(ports) != "[[1 2] [2 2]]" {
		t.Errorf("WatchAs(struct) saw %v", ports)
	}
	if st := c.Stats(); st.Reloads != 2 || st.ReloadErrors != 0 || st.DecryptRequests != 3 {
		t.Errorf("stats %+v", st)
	}
}

// A bad change keeps the last good snapshot, reaches OnError, a log line
// and the counter, and never shows the value; the next good change applies.
func TestBadChangeKeepsLastGood(t *testing.T) {
	k := startKMS(t)
	const canary = "CANARY-change-51d0"
	good := k.enc(t, canary, nil)
	path := tempFile(t, "app.yaml", "db:\n  password: "+good+"\n")
	logs := &logBuffer{}
	errs := make(chan error, 10)
	c, err := configcenter.New(context.Background(), configcenter.Options{
		Sources: []configcenter.Source{fileSource(path)}, Decrypter: k.client, Logger: logs.logger(),
		OnError: func(err error) { errs <- err }})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	before := c.Snapshot()

	for _, bad := range []string{
		"db:\n  password: ENC(AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA)\n", // not a blob
		"db:\n  password: ENC(#" + canary + ")\n",                                      // malformed
		"db: [unclosed\n", // YAML syntax
	} {
		writeFile(t, path, bad)
		select {
		case err := <-errs:
			if strings.Contains(err.Error(), canary) {
				t.Fatalf("OnError got a value: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("no OnError")
		}
		if c.Snapshot() != before || c.Snapshot().String("db.password", "") != canary {
			t.Fatal("snapshot changed after a bad change")
		}
	}
	if st := c.Stats(); st.ReloadErrors != 3 || st.Reloads != 0 {
		t.Fatalf("stats %+v", st)
	}
	out := logs.String()
	if strings.Count(out, "change rejected") != 3 || !strings.Contains(out, `db.password`) {
		t.Fatalf("log lines:\n%s", out)
	}
	if strings.Contains(out, canary) {
		t.Fatal("log leaks the canary")
	}
	next := k.enc(t, "next-good", nil)
	writeFile(t, path, "db:\n  password: "+next+"\n")
	eventually(t, "good change", func() bool { return c.Snapshot().String("db.password", "") == "next-good" })
}

// Redaction: no fmt verb of a Snapshot or a Config shows a decrypted value.
func TestRedaction(t *testing.T) {
	k := startKMS(t)
	const canary = "CANARY-redact-9c21"
	path := tempFile(t, "app.yaml", "db:\n  password: "+k.enc(t, canary, nil)+"\n")
	c, err := configcenter.New(context.Background(), configcenter.Options{
		Sources: []configcenter.Source{fileSource(path)}, Decrypter: k.client, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s := c.Snapshot()
	if s.String("db.password", "") != canary {
		t.Fatal("not decrypted")
	}
	type holder struct {
		S *configcenter.Snapshot
		V configcenter.Snapshot
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%T %v"} {
		for _, v := range []any{s, *s, c, holder{s, *s}, []any{s}} {
			var got string
			if verb == "%T %v" {
				got = fmt.Sprintf(verb, v, v)
			} else {
				got = fmt.Sprintf(verb, v)
			}
			if strings.Contains(got, canary) || strings.Contains(strings.ToLower(got), strings.ToLower(fmt.Sprintf("%x", canary))) {
				t.Errorf("%s of %T leaks: %s", verb, v, got)
			}
		}
	}
	if !strings.Contains(fmt.Sprint(s), "REDACTED") {
		t.Errorf("snapshot prints %s", s)
	}
	// A bind error quotes neither the value.
	var bad struct {
		DB struct {
			Password int `koanf:"password"`
		} `koanf:"db"`
	}
	if err := c.Bind(&bad); err == nil || strings.Contains(err.Error(), canary) {
		t.Fatalf("bind error %v", err)
	}
}
