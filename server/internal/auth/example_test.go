package auth_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/kmsgo/kmsgo/hsm/devhsm"
	"github.com/kmsgo/kmsgo/server/internal/auth"
	"github.com/kmsgo/kmsgo/server/internal/migrate"
)

// setup opens a throw-away SQLite database and development HSM in dir.
func setup(dir string) *auth.Service {
	db, err := gorm.Open(sqlite.Open(filepath.Join(dir, "kms.db")), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		log.Fatal(err)
	}
	if err := migrate.Apply(db, auth.Migrations()...); err != nil {
		log.Fatal(err)
	}
	backend, err := devhsm.Open(filepath.Join(dir, "hsm"))
	if err != nil {
		log.Fatal(err)
	}
	s, err := auth.New(db, backend, auth.Config{Region: "local"})
	if err != nil {
		log.Fatal(err)
	}
	return s
}

func ExampleService_Authenticate() {
	dir, _ := os.MkdirTemp("", "auth-example")
	defer os.RemoveAll(dir)
	s := setup(dir)
	ctx := context.Background()

	policy, _ := auth.ParsePolicy([]byte(`{"statements":[{"effect":"Allow",
		"actions":["kms:Decrypt"],"resources":["alias/orders-*"]}]}`))
	key, secret, err := s.CreateAccessKey(ctx, "orders service", policy)
	if err != nil {
		log.Fatal(err)
	}

	// A client signs with any SigV4 signer: service "kms", the server's region.
	body := []byte(`{"ciphertext_blob":"..."}`)
	sum := sha256.Sum256(body)
	req := httptest.NewRequest("POST", "http://kms.internal/v1/decrypt", bytes.NewReader(body))
	req.Header.Set("X-Amz-Content-Sha256", hex.EncodeToString(sum[:]))
	req.Header.Set(auth.NonceHeader, "3f9c2a7e5b1d4c8a9e0f")
	creds := aws.Credentials{AccessKeyID: key.ID, SecretAccessKey: secret}
	_ = v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "kms", "local", time.Now())

	// The server verifies it and then checks the policy.
	p, err := s.Authenticate(req, body)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(p.AccessKeyID == key.ID)
	fmt.Println(p.Policy.Allowed("kms:Decrypt", "key/1234", "alias/orders-eu"))

	// The same request again is a replay.
	_, err = s.Authenticate(req, body)
	fmt.Println(err)
	// Output:
	// true
	// true
	// auth: request not authenticated: replayed nonce
}

func ExamplePolicy_Allowed() {
	p, err := auth.ParsePolicy([]byte(`{"statements":[
		{"effect":"Allow","actions":["kms:Decrypt","kms:GenerateDataKey*"],"resources":["alias/orders-*"]},
		{"effect":"Deny","actions":["*"],"resources":["key/retired"]}]}`))
	if err != nil {
		log.Fatal(err)
	}
	// A request on a key names the key and each of its aliases.
	fmt.Println(p.Allowed("kms:GenerateDataKeyWithoutPlaintext", "key/k1", "alias/orders-eu"))
	fmt.Println(p.Allowed("kms:Encrypt", "key/k1", "alias/orders-eu"))
	fmt.Println(p.Allowed("kms:Decrypt", "key/retired", "alias/orders-old"))
	// Actions on no particular key need resource "*".
	fmt.Println(p.Allowed("kms:CreateKey"))
	fmt.Println(auth.AdminPolicy().Allowed("kms:CreateKey"))
	// Output:
	// true
	// false
	// false
	// false
	// true
}

func ExampleParsePolicy() {
	_, err := auth.ParsePolicy([]byte(`{"statements":[{"effect":"Permit","actions":["*"],"resources":["*"]}]}`))
	fmt.Println(err)
	// Output:
	// auth: invalid policy: statement 0: effect must be "Allow" or "Deny"
}

func ExampleService_EnsureBootstrapAdmin() {
	dir, _ := os.MkdirTemp("", "auth-example")
	defer os.RemoveAll(dir)
	s := setup(dir)
	path := filepath.Join(dir, "admin-credentials.json")

	created, err := s.EnsureBootstrapAdmin(context.Background(), path)
	fmt.Println(created, err)
	fi, _ := os.Stat(path)
	fmt.Println(fi.Mode().Perm())

	// Keys exist now: a second call does nothing.
	created, err = s.EnsureBootstrapAdmin(context.Background(), filepath.Join(dir, "again.json"))
	fmt.Println(created, err)
	// Output:
	// true <nil>
	// -rw-------
	// false <nil>
}
