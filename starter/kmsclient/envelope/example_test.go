package envelope_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"

	"github.com/kmsgo/kmsgo/starter/kmsclient"
	"github.com/kmsgo/kmsgo/starter/kmsclient/envelope"
)

// Encrypt a file of any size under two master keys (either can decrypt),
// in constant memory. The examples that talk to kmsd have no Output line:
// they need a running server (see examples/stream for one that runs).
func ExampleCodec_NewWriter() {
	c, _ := kmsclient.New(kmsclient.Config{Endpoint: "http://127.0.0.1:8400", AccessKeyID: "AK", SecretAccessKey: "SK"})
	ctx := context.Background()
	in, err := os.Open("backup.tar")
	if err != nil {
		log.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile("backup.tar.kms", os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		log.Fatal(err)
	}
	defer out.Close()

	w, err := envelope.New(c).NewWriter(ctx, out, "alias/backups-eu", envelope.WriterOptions{
		ExtraKeyIDs: []string{"alias/backups-us"},
		Context:     map[string]string{"host": "db1"},
	})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := io.Copy(w, in); err != nil {
		log.Fatal(err)
	}
	if err := w.Close(); err != nil { // seals the last chunk: required
		log.Fatal(err)
	}
}

// Decrypt, requiring the encryption context the writer used.
func ExampleCodec_NewReader() {
	c, _ := kmsclient.New(kmsclient.Config{Endpoint: "http://127.0.0.1:8400", AccessKeyID: "AK", SecretAccessKey: "SK"})
	in, _ := os.Open("backup.tar.kms")
	defer in.Close()
	r, err := envelope.New(c).NewReader(context.Background(), in, envelope.ReaderOptions{
		Context: map[string]string{"host": "db1"},
	})
	switch {
	case errors.Is(err, kmsclient.ErrInvalidKeyState):
		log.Fatal("every recipient key is disabled: ", err)
	case err != nil:
		log.Fatal(err)
	}
	// Plaintext comes out one authenticated chunk at a time; a stream that
	// was cut short or altered ends in ErrAuthentication, never in io.EOF.
	if _, err := io.Copy(os.Stdout, r); errors.Is(err, envelope.ErrAuthentication) {
		log.Fatal("tampered or truncated: discard what was written")
	}
}

// Many small files under one key: with the client's data-key cache, one
// GenerateDataKey serves many streams (each still gets its own AES key).
func ExampleNew_cached() {
	c, _ := kmsclient.New(kmsclient.Config{Endpoint: "http://127.0.0.1:8400", AccessKeyID: "AK", SecretAccessKey: "SK"})
	cached, err := kmsclient.NewCached(c, kmsclient.CacheConfig{})
	if err != nil {
		log.Fatal(err)
	}
	codec := envelope.New(cached)
	_ = codec // codec.NewWriter(...) per file
}

// Inspect a stream's header without KMS: nothing here is authenticated.
func ExampleReadHeader() {
	f, err := os.Open("testdata/example.kms")
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	h, err := envelope.ReadHeader(f)
	if err != nil {
		log.Fatal(err)
	}
	fi, _ := f.Stat()
	size, chunks, err := h.BodySize(fi.Size())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("version", h.Version, "chunk size", h.ChunkSize)
	fmt.Println("context", h.Context)
	fmt.Println("recipient", h.Recipients[0].KeyID)
	fmt.Println("plaintext", size, "bytes in", chunks, "chunks")
	// Output:
	// version 1 chunk size 4096
	// context map[file:report.csv tenant:7]
	// recipient fuzz-key
	// plaintext 10000 bytes in 3 chunks
}
