// Command awssdk shows that an application written for AWS KMS works with
// kmsd by changing only the endpoint: it uses the official AWS SDK for Go v2
// (github.com/aws/aws-sdk-go-v2/service/kms) for the envelope pattern of the
// AWS Encryption SDK.
//
//  1. GenerateDataKey (AES_256) under a master key, with an encryption context;
//  2. encrypt the data locally with AES-256-GCM and forget the plaintext data key;
//  3. store only the encrypted data key, the context, the nonce and the ciphertext;
//  4. later: Decrypt the data key (same context) and decrypt the data locally.
//
// The master key behind alias/examples-awssdk is created on the first run.
//
// Run it against a local kmsd (make run) with kmsd's admin credentials:
//
//	go run ./examples/awssdk --credentials .kmsgo-data/admin-credentials.json --text 'hello'
//
// or with the usual AWS variables (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY
// holding a kmsd access key, AWS_REGION = kmsd's region, default "local")
// and --endpoint (default http://127.0.0.1:8400).
package main

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, nil); err != nil {
		fmt.Fprintln(os.Stderr, "awssdk:", err)
		os.Exit(1)
	}
}

// Envelope is what gets stored. Neither the plaintext nor the plaintext
// data key is in it.
type Envelope struct {
	EncryptedDataKey []byte            `json:"encrypted_data_key"` // GenerateDataKey's CiphertextBlob
	Context          map[string]string `json:"context"`            // must be repeated exactly on Decrypt
	Nonce            []byte            `json:"nonce"`              // 96-bit random AES-GCM nonce
	Ciphertext       []byte            `json:"ciphertext"`         // AES-256-GCM(data key, nonce, data) || tag
}

// run is main without the process: httpClient may be nil (default client).
func run(ctx context.Context, args []string, stdout io.Writer, httpClient *http.Client) error {
	fs := flag.NewFlagSet("awssdk", flag.ContinueOnError)
	credFile := fs.String("credentials", "", "kmsd credentials JSON (e.g. .kmsgo-data/admin-credentials.json); default: AWS_* environment")
	endpoint := fs.String("endpoint", "http://127.0.0.1:8400", "kmsd URL")
	alias := fs.String("key", "alias/examples-awssdk", "master key alias (created when missing)")
	text := fs.String("text", "hello from the AWS SDK", "the data to protect")
	if err := fs.Parse(args); err != nil {
		return err
	}
	creds, region, err := credentials(*credFile)
	if err != nil {
		return err
	}
	// The only kmsd-specific line: BaseEndpoint. Everything else is plain AWS SDK.
	client := kms.New(kms.Options{
		Region:       region,
		BaseEndpoint: aws.String(*endpoint),
		Credentials:  aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return creds, nil }),
		HTTPClient:   httpClient,
	})

	keyARN, created, err := ensureKey(ctx, client, *alias)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "master key %s -> %s (created %v)\n", *alias, keyARN, created)

	// 1-3: a data key, local encryption, store only the envelope.
	encCtx := map[string]string{"purpose": "examples/awssdk"}
	dk, err := client.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: alias, KeySpec: types.DataKeySpecAes256, EncryptionContext: encCtx})
	if err != nil {
		return fmt.Errorf("GenerateDataKey: %w", err)
	}
	nonce, ct, err := seal(dk.Plaintext, []byte(*text))
	clear(dk.Plaintext)
	if err != nil {
		return err
	}
	stored, err := json.Marshal(Envelope{EncryptedDataKey: dk.CiphertextBlob, Context: encCtx, Nonce: nonce, Ciphertext: ct})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "data key from %s; envelope of %d bytes stored\n", aws.ToString(dk.KeyId), len(stored))

	// 4: read the envelope back and decrypt.
	var env Envelope
	if err := json.Unmarshal(stored, &env); err != nil {
		return err
	}
	plain, err := open(ctx, client, env)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "decrypted: %s\n", plain)

	// A different encryption context is refused with AWS's exception.
	env.Context = map[string]string{"purpose": "something else"}
	_, err = open(ctx, client, env)
	var bad *types.InvalidCiphertextException
	if !errors.As(err, &bad) {
		return fmt.Errorf("decrypt with a wrong context: want InvalidCiphertextException, got %v", err)
	}
	fmt.Fprintln(stdout, "with a different encryption context: InvalidCiphertextException")
	return nil
}

// open asks kmsd to decrypt the data key and decrypts the data locally.
func open(ctx context.Context, client *kms.Client, env Envelope) ([]byte, error) {
	dk, err := client.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: env.EncryptedDataKey, EncryptionContext: env.Context})
	if err != nil {
		return nil, fmt.Errorf("Decrypt: %w", err)
	}
	defer clear(dk.Plaintext)
	gcm, err := newGCM(dk.Plaintext)
	if err != nil {
		return nil, err
	}
	if len(env.Nonce) != gcm.NonceSize() {
		return nil, errors.New("envelope: bad nonce")
	}
	plain, err := gcm.Open(nil, env.Nonce, env.Ciphertext, nil)
	if err != nil {
		return nil, errors.New("envelope: data does not decrypt")
	}
	return plain, nil
}

func seal(key, data []byte) (nonce, ciphertext []byte, err error) {
	gcm, err := newGCM(key)
	if err != nil {
		return nil, nil, err
	}
	nonce = make([]byte, gcm.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, nil, err
	}
	return nonce, gcm.Seal(nil, nonce, data, nil), nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// ensureKey returns the ARN of the key behind alias, creating key and alias
// when the alias does not exist yet.
func ensureKey(ctx context.Context, c *kms.Client, alias string) (arn string, created bool, err error) {
	d, err := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(alias)})
	if err == nil {
		return aws.ToString(d.KeyMetadata.Arn), false, nil
	}
	var nf *types.NotFoundException
	if !errors.As(err, &nf) {
		return "", false, fmt.Errorf("DescribeKey %s: %w", alias, err)
	}
	k, err := c.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("kmsgo examples/awssdk")})
	if err != nil {
		return "", false, fmt.Errorf("CreateKey: %w", err)
	}
	if _, err := c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(alias), TargetKeyId: k.KeyMetadata.KeyId}); err != nil {
		return "", false, fmt.Errorf("CreateAlias: %w", err)
	}
	return aws.ToString(k.KeyMetadata.Arn), true, nil
}

// credentials reads a kmsd credentials file, or AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY and AWS_REGION. Secrets never come from flags.
func credentials(file string) (aws.Credentials, string, error) {
	c := aws.Credentials{AccessKeyID: os.Getenv("AWS_ACCESS_KEY_ID"), SecretAccessKey: os.Getenv("AWS_SECRET_ACCESS_KEY"), Source: "environment"}
	region := os.Getenv("AWS_REGION")
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return c, "", err
		}
		var f struct {
			AccessKeyID     string `json:"access_key_id"`
			SecretAccessKey string `json:"secret_access_key"`
			Region          string `json:"region"`
		}
		if err := json.Unmarshal(b, &f); err != nil {
			return c, "", fmt.Errorf("%s: %w", file, err)
		}
		c = aws.Credentials{AccessKeyID: f.AccessKeyID, SecretAccessKey: f.SecretAccessKey, Source: file}
		region = f.Region
	}
	if c.AccessKeyID == "" || c.SecretAccessKey == "" {
		return c, "", errors.New("no credentials: use --credentials or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
	}
	if region == "" {
		region = "local"
	}
	return c, region, nil
}
