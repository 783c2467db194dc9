package awsapi_test

import (
	"bytes"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/kmsgo/kmsgo/server/kmstest"
)

func TestSmoke(t *testing.T) {
	srv := kmstest.Start(t)
	c := adminClient(srv)
	ck, err := c.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("smoke")})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", *ck.KeyMetadata)
	enc, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: ck.KeyMetadata.KeyId, Plaintext: []byte("hi"), EncryptionContext: map[string]string{"a": "b"}})
	if err != nil {
		t.Fatal(err)
	}
	dec, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: map[string]string{"a": "b"}})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(dec.Plaintext, []byte("hi")) {
		t.Fatal(dec.Plaintext)
	}
	_, err = c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
	wantErrorAs[*types.InvalidCiphertextException](t, err)
}
