package awsapi

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/kmsgo/kmsgo/server/internal/kms"
)

// FuzzParseKeyRef checks that the KeyId parser never panics, that every
// failure is ErrInvalidKeyRef with a known AWS exception, and that every
// accepted reference is a well-formed key id or alias whose ARN parses back
// to the same reference.
func FuzzParseKeyRef(f *testing.F) {
	a := ARNs{Region: "local", Account: "123456789012"}
	for _, s := range []string{
		"1234abcd-12ab-34cd-56ef-1234567890ab", "alias/orders", "alias/a/b_c-d",
		"arn:aws:kms:local:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
		"arn:aws:kms:local:123456789012:alias/orders", "arn:aws:kms:eu-west-1:123456789012:key/x",
		"arn:aws:s3:::bucket", "arn:", "arn:aws:kms:local:123456789012:", "alias/", "alias/aws/s3",
		"", "KEY", "arn:aws:kms:local:123456789012:key/alias/x", "alias/\u00e9",
	} {
		f.Add(s, true)
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, s string, allowAlias bool) {
		ref, err := a.ParseKeyRef(s, allowAlias)
		if err != nil {
			var e *Error
			if !errors.Is(err, ErrInvalidKeyRef) || !errors.As(err, &e) {
				t.Fatalf("error %v is not ErrInvalidKeyRef with an *Error", err)
			}
			if _, ok := excStatus[e.Type]; !ok {
				t.Fatalf("unknown exception %q", e.Type)
			}
			return
		}
		if (ref.KeyID == "") == (ref.Alias == "") {
			t.Fatalf("%q: ref %+v must have exactly one of key id and alias", s, ref)
		}
		arn := a.Key(ref.KeyID)
		if ref.Alias != "" {
			if !allowAlias || !kms.ValidAliasName(ref.Alias) {
				t.Fatalf("%q: alias %q accepted (allowAlias %v)", s, ref.Alias, allowAlias)
			}
			arn = a.Alias(ref.Alias)
		} else if !kms.ValidKeyID(ref.KeyID) {
			t.Fatalf("%q: key id %q accepted", s, ref.KeyID)
		}
		if s != ref.String() && s != arn {
			t.Fatalf("%q parsed to %+v, which is neither the reference nor its ARN", s, ref)
		}
		again, err := a.ParseKeyRef(arn, allowAlias)
		if err != nil || again != ref {
			t.Fatalf("ARN %q of %+v parses to %+v, %v", arn, ref, again, err)
		}
	})
}

// FuzzDecodeRequest checks that the request decoder never panics on any
// operation's input, that failures are SerializationException or
// ValidationException, and that what it accepts survives a round trip.
func FuzzDecodeRequest(f *testing.F) {
	for _, s := range []string{
		`{"KeyId":"alias/a","Plaintext":"aGVsbG8=","EncryptionContext":{"a":"b"}}`,
		`{"CiphertextBlob":"AQ==","EncryptionContext":{"k":"v"},"KeyId":"x","DryRun":true}`,
		`{"Limit":10,"Marker":"abc"}`, `{"Tags":[{"TagKey":"k","TagValue":"v"}]}`,
		`{"Limit":"x"}`, `{"Plaintext":"!!"}`, `{} {}`, `[]`, `null`, ``, `{"Unknown":1}`,
		`{"KeyId":"k","KeyId":"j"}`, "{\"KeyId\":\"\\ud800\"}", `{"NumberOfBytes":1e400}`,
		`{"ValidTo":1700000000.5}`, `{"Recipient":{"AttestationDocument":"AA=="}}`,
	} {
		for sel := byte(0); sel < 6; sel++ {
			f.Add([]byte(s), sel)
		}
	}
	f.Fuzz(func(t *testing.T, body []byte, sel byte) {
		var in any
		switch sel % 6 {
		case 0:
			in = &encryptInput{}
		case 1:
			in = &decryptInput{}
		case 2:
			in = &listAliasesInput{}
		case 3:
			in = &createKeyInput{}
		case 4:
			in = &generateDataKeyInput{}
		default:
			in = &importKeyMaterialInput{}
		}
		err := decodeBody(body, in)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || (e.Type != ExcSerialization && e.Type != ExcValidation) {
				t.Fatalf("error %v is not a SerializationException or ValidationException", err)
			}
			return
		}
		b, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		if err := decodeBody(b, in); err != nil {
			t.Fatalf("re-decode of %s: %v", b, err)
		}
	})
}
