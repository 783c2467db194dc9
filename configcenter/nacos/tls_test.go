package nacos_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kmsgo/kmsgo/configcenter/nacos"
	"github.com/kmsgo/kmsgo/configcenter/nacos/nacostest"
)

// selfSigned makes a certificate for 127.0.0.1 and writes it as a CA file.
func selfSigned(t *testing.T) (tls.Certificate, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "nacostest"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, caFile
}

func TestTLS(t *testing.T) {
	cert, caFile := selfSigned(t)
	srv := nacostest.StartT(t, nacostest.Options{TLS: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}})
	srv.Publish(ns(t), grp, "app.yaml", "a: tls\n")

	cfg := baseConfig(t, srv, "app.yaml")
	cfg.TLS = &nacos.TLS{CAFile: caFile}
	src := newSource(t, cfg)
	st, err := src.Load(context.Background())
	if err != nil || render(st) != "[app.yaml||a: tls\n]" {
		t.Fatalf("Load over TLS = %q, %v", render(st), err)
	}

	// Without TLS the client cannot talk to a TLS server.
	plain := baseConfig(t, srv, "app.yaml")
	plain.Timeout = 2 * time.Second
	if _, err := newSource(t, plain).Load(context.Background()); !errors.Is(err, nacos.ErrFetch) {
		t.Fatalf("plaintext Load against a TLS server = %v, want ErrFetch", err)
	}
}
