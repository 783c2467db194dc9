package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuf is a goroutine-safe bytes.Buffer.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type running struct {
	addr   string
	stdout *syncBuf
	stderr *syncBuf
	stop   func() error
}

func start(t *testing.T, args []string, env map[string]string) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{stdout: &syncBuf{}, stderr: &syncBuf{}}
	addrc := make(chan string, 1)
	errc := make(chan error, 1)
	go func() {
		errc <- run(ctx, args, func(k string) string { return env[k] }, r.stdout, r.stderr, func(a string) { addrc <- a })
	}()
	select {
	case r.addr = <-addrc:
	case err := <-errc:
		cancel()
		t.Fatalf("kmsd exited: %v\nstderr: %s", err, r.stderr.String())
	case <-time.After(60 * time.Second):
		cancel()
		t.Fatal("kmsd did not start")
	}
	var once sync.Once
	var stopErr error
	r.stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case stopErr = <-errc:
			case <-time.After(30 * time.Second):
				stopErr = context.DeadlineExceeded
			}
		})
		return stopErr
	}
	t.Cleanup(func() { _ = r.stop() })
	return r
}

func TestFirstStartBootstrapsAdminAndShutsDownGracefully(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	r := start(t, []string{"--data-dir", dir, "--listen", "127.0.0.1:0"}, nil)

	credPath := filepath.Join(dir, "admin-credentials.json")
	fi, err := os.Stat(credPath)
	if err != nil {
		t.Fatalf("credentials file: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("credentials mode %v, want 0600", fi.Mode().Perm())
	}
	raw, err := os.ReadFile(credPath)
	if err != nil {
		t.Fatal(err)
	}
	var cred struct {
		AccessKeyID     string `json:"access_key_id"`
		SecretAccessKey string `json:"secret_access_key"`
		Endpoint        string `json:"endpoint"`
	}
	if err := json.Unmarshal(raw, &cred); err != nil || cred.SecretAccessKey == "" {
		t.Fatalf("credentials %v", err)
	}
	// The file names the server actually listening (here on a random
	// port), so that kmsctl configure --from-file reaches it.
	if cred.Endpoint != "http://"+r.addr {
		t.Fatalf("credentials endpoint %q, want http://%s", cred.Endpoint, r.addr)
	}
	if !strings.Contains(r.stdout.String(), "--endpoint http://"+r.addr) {
		t.Fatalf("start-up hint lacks --endpoint:\n%s", r.stdout.String())
	}
	out := r.stdout.String() + r.stderr.String()
	if !strings.Contains(r.stdout.String(), credPath) {
		t.Fatalf("stdout does not name the credentials path:\n%s", r.stdout.String())
	}
	if strings.Contains(out, cred.SecretAccessKey) {
		t.Fatal("the secret access key was printed")
	}
	if !strings.Contains(r.stderr.String(), "devhsm") {
		t.Fatal("no warning about the development key backend")
	}

	resp, err := http.Get("http://" + r.addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz %d", resp.StatusCode)
	}
	resp, err = http.Get("http://" + r.addr + "/v1/keys")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("unsigned /v1/keys: %d, want 401", resp.StatusCode)
	}
	if err := r.stop(); err != nil {
		t.Fatalf("graceful shutdown: %v", err)
	}
	if _, err := net.DialTimeout("tcp", r.addr, time.Second); err == nil {
		t.Fatal("still listening after shutdown")
	}

	// A second start keeps the existing admin and does not rewrite the file.
	r2 := start(t, []string{"--data-dir", dir, "--listen", "127.0.0.1:0"}, nil)
	if strings.Contains(r2.stdout.String(), "created the bootstrap admin") {
		t.Fatal("second start bootstrapped again")
	}
	raw2, _ := os.ReadFile(credPath)
	if !bytes.Equal(raw, raw2) {
		t.Fatal("credentials file changed on restart")
	}
}

func TestConfigFileEnvAndTLS(t *testing.T) {
	dir := t.TempDir()
	cert, key := selfSigned(t, dir)
	cfg := filepath.Join(dir, "kmsd.yaml")
	yaml := "listen: 127.0.0.1:1\nregion: eu-test\nlog:\n  format: text\n  level: debug\n"
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"KMSD_LISTEN":        "127.0.0.1:0", // env beats the file
		"KMSD_DATA_DIR":      filepath.Join(dir, "data"),
		"KMSD_TLS_CERT_FILE": cert,
		"KMSD_TLS_KEY_FILE":  key,
	}
	r := start(t, []string{"--config", cfg}, env)
	if !strings.Contains(r.stdout.String(), "https://") {
		t.Fatalf("not serving TLS: %s", r.stdout.String())
	}
	pool := x509.NewCertPool()
	pem, _ := os.ReadFile(cert)
	pool.AppendCertsFromPEM(pem)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := c.Get("https://" + r.addr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("readyz %d", resp.StatusCode)
	}
	raw, _ := os.ReadFile(filepath.Join(dir, "data", "admin-credentials.json"))
	if !strings.Contains(string(raw), `"eu-test"`) {
		t.Fatalf("region from the config file not applied: %s", raw)
	}
}

func TestBadConfigFails(t *testing.T) {
	dir := t.TempDir()
	cases := map[string]string{
		"unknown field":         "listne: 127.0.0.1:0\n",
		"bad backend":           "hsm:\n  backend: magic\n",
		"pkcs11 without module": "hsm:\n  backend: pkcs11\n",
		"half tls":              "tls:\n  cert_file: x.pem\n",
	}
	for name, body := range cases {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".yaml")
			if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
			var out, errb syncBuf
			err := run(context.Background(), []string{"--config", p, "--data-dir", filepath.Join(dir, "d")}, func(string) string { return "" }, &out, &errb, nil)
			if err == nil {
				t.Fatal("started with a bad config")
			}
		})
	}
}

func selfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kmsd-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func TestExampleConfigParses(t *testing.T) {
	var out, errb syncBuf
	dir := t.TempDir()
	env := map[string]string{"KMSD_DATA_DIR": dir}
	// --print-env does not start the server but still validates flags.
	if err := run(context.Background(), []string{"--print-env"}, func(k string) string { return env[k] }, &out, &errb, nil); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "KMSD_HSM_TOKEN_LABEL") {
		t.Fatalf("--print-env: %s", out.String())
	}
	r := start(t, []string{"--config", "kmsd.example.yaml", "--listen", "127.0.0.1:0"}, env)
	if !strings.Contains(r.stdout.String(), "listening on http://") {
		t.Fatalf("example config did not start: %s", r.stdout.String())
	}
}
