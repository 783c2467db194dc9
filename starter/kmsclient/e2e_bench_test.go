package kmsclient_test

import (
	"context"
	"testing"

	"github.com/kmsgo/kmsgo/server/kmstest"
	"github.com/kmsgo/kmsgo/starter/kmsclient"
)

// BenchmarkEncryptKmstest measures Encrypt against an in-process kmsd
// (SigV4 verification, policy, default backend, audit): client
// and server share the CPU, as in the load benchmark.
func BenchmarkEncryptKmstest(b *testing.B) {
	srv := kmstest.Start(b)
	c := e2eClientB(b, srv)
	if _, err := c.CreateKey(context.Background(), kmsclientCreateKeyInput("alias/bench")); err != nil {
		b.Fatal(err)
	}
	pt := make([]byte, 64)
	encCtx := map[string]string{"table": "users"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Encrypt(context.Background(), "alias/bench", pt, encCtx); err != nil {
			b.Fatal(err)
		}
	}
}

func e2eClientB(b *testing.B, srv *kmstest.Server) *kmsclient.Client {
	c, err := kmsclient.New(kmsclient.Config{Endpoint: srv.URL, AccessKeyID: srv.AccessKeyID, SecretAccessKey: srv.SecretAccessKey,
		Region: srv.Region, HTTPClient: srv.HTTP.Client(), SendNonce: true})
	if err != nil {
		b.Fatal(err)
	}
	return c
}

func kmsclientCreateKeyInput(alias string) kmsclient.CreateKeyInput {
	return kmsclient.CreateKeyInput{Description: "bench", Alias: alias}
}
