package awsapi_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/kmsgo/kmsgo/server/internal/awsapi"
	"github.com/kmsgo/kmsgo/server/kmstest"
)

type auditRecord struct {
	AccessKeyID string            `json:"access_key_id"`
	Action      string            `json:"action"`
	KeyID       string            `json:"key_id"`
	Result      string            `json:"result"`
	ReasonCode  string            `json:"reason_code"`
	Details     map[string]string `json:"details"`
}

func auditRecords(t *testing.T, srv *kmstest.Server) []auditRecord {
	t.Helper()
	st, body := srv.Do(t, http.MethodGet, "/v1/audit?limit=1000", nil)
	if st != http.StatusOK {
		t.Fatalf("audit: %d %s", st, body)
	}
	var out struct {
		Records []auditRecord `json:"records"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatal(err)
	}
	return out.Records
}

func TestAuthorizationAndAudit(t *testing.T) {
	srv := kmstest.Start(t)
	admin := adminClient(srv)
	allowed := must[*kms.CreateKeyOutput](t)(admin.CreateKey(ctx, &kms.CreateKeyInput{})).KeyMetadata
	must[*kms.CreateAliasOutput](t)(admin.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/allowed"), TargetKeyId: allowed.KeyId}))
	other := must[*kms.CreateKeyOutput](t)(admin.CreateKey(ctx, &kms.CreateKeyInput{})).KeyMetadata

	// The same policy documents as for /v1: kms:<Operation> on key/ and alias/ resources.
	ak, secret := srv.CreateAccessKey(t, `{"statements":[{"effect":"Allow","actions":["kms:Encrypt","kms:DescribeKey"],"resources":["alias/allowed"]}]}`)
	c := newClient(srv, ak, secret)
	enc, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String("alias/allowed"), Plaintext: []byte("x")})
	if err != nil {
		t.Fatalf("allowed encrypt: %v", err)
	}
	// An alias policy covers the key however the caller names it.
	if _, err := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: allowed.Arn}); err != nil {
		t.Fatalf("describe by ARN: %v", err)
	}
	denied := []struct {
		name string
		call func() error
	}{
		{"other key", func() error {
			_, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: other.KeyId, Plaintext: []byte("x")})
			return err
		}},
		{"other action", func() error {
			_, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
			return err
		}},
		{"management", func() error {
			_, err := c.DisableKey(ctx, &kms.DisableKeyInput{KeyId: allowed.KeyId})
			return err
		}},
		{"list keys", func() error { _, err := c.ListKeys(ctx, &kms.ListKeysInput{}); return err }},
		{"create key", func() error { _, err := c.CreateKey(ctx, &kms.CreateKeyInput{}); return err }},
		{"random", func() error {
			_, err := c.GenerateRandom(ctx, &kms.GenerateRandomInput{NumberOfBytes: aws.Int32(8)})
			return err
		}},
	}
	for _, tc := range denied {
		t.Run(tc.name, func(t *testing.T) { wantCode(t, tc.call(), "AccessDeniedException", http.StatusBadRequest) })
	}
	d := must[*kms.DescribeKeyOutput](t)(admin.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: allowed.KeyId}))
	if d.KeyMetadata.KeyState != types.KeyStateEnabled {
		t.Fatal("a denied DisableKey changed the key")
	}
	lk := must[*kms.ListKeysOutput](t)(admin.ListKeys(ctx, &kms.ListKeysInput{}))
	if len(lk.Keys) != 2 {
		t.Fatalf("a denied CreateKey created a key: %d keys", len(lk.Keys))
	}

	// Unknown access key and wrong secret look the same.
	_, err1 := newClient(srv, ak, secret+"x").ListKeys(ctx, &kms.ListKeysInput{})
	_, err2 := newClient(srv, "AKKMSAAAAAAAAAAAAAAAA", secret).ListKeys(ctx, &kms.ListKeysInput{})
	wantCode(t, err1, "InvalidSignatureException", http.StatusBadRequest)
	wantCode(t, err2, "InvalidSignatureException", http.StatusBadRequest)
	msg := func(err error) string { s := err.Error(); return s[strings.Index(s, "InvalidSignatureException"):] }
	if msg(err1) != msg(err2) {
		t.Fatalf("wrong secret %q vs unknown key %q", msg(err1), msg(err2))
	}

	// Every authenticated AWS request is in the same audit log as /v1.
	var okEncrypt, deniedDecrypt, deniedDisable bool
	for _, r := range auditRecords(t, srv) {
		if r.AccessKeyID != ak {
			continue
		}
		if r.Details["protocol"] != "aws-json-1.1" || r.Details["path"] != "/" {
			t.Fatalf("record %+v lacks the protocol details", r)
		}
		switch {
		case r.Action == "kms:Encrypt" && r.Result == "ok" && r.KeyID == aws.ToString(allowed.KeyId) && r.Details["operation"] == "Encrypt":
			okEncrypt = true
		case r.Action == "kms:Decrypt" && r.ReasonCode == "AccessDenied" && r.Details["aws_error"] == "AccessDeniedException":
			deniedDecrypt = true
		case r.Action == "kms:DisableKey" && r.ReasonCode == "AccessDenied" && r.KeyID == aws.ToString(allowed.KeyId):
			deniedDisable = true
		}
	}
	if !okEncrypt || !deniedDecrypt || !deniedDisable {
		t.Fatalf("audit: encrypt %v, denied decrypt %v, denied disable %v", okEncrypt, deniedDecrypt, deniedDisable)
	}
}

func TestUnsupportedOperation(t *testing.T) {
	srv := kmstest.Start(t)
	c := adminClient(srv)
	_, err := c.Sign(ctx, &kms.SignInput{KeyId: aws.String("alias/x"), Message: []byte("m"), SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256})
	wantExc[*types.UnsupportedOperationException](t, err, http.StatusBadRequest)
	_, err = c.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: aws.String("alias/x"), GranteePrincipal: aws.String("p"), Operations: []types.GrantOperation{types.GrantOperationDecrypt}})
	wantExc[*types.UnsupportedOperationException](t, err, http.StatusBadRequest)
	for _, r := range auditRecords(t, srv) {
		if r.Action == "kms:Sign" && r.Details["aws_error"] == "UnsupportedOperationException" {
			return
		}
	}
	t.Fatal("the refused Sign call is not audited")
}

func TestProtocolShape(t *testing.T) {
	srv := kmstest.Start(t)
	const ct = awsapi.ContentType
	for _, tc := range []struct {
		name, target, contentType, body string
		sign                            bool
		status                          int
		typ                             string
	}{
		{"no target", "", ct, `{}`, true, 400, "UnknownOperationException"},
		{"other service", "DynamoDB_20120810.ListTables", ct, `{}`, true, 400, "UnknownOperationException"},
		{"bad operation name", "TrentService.list-keys", ct, `{}`, true, 400, "UnknownOperationException"},
		{"wrong content type", "TrentService.ListKeys", "application/json", `{}`, true, 400, "SerializationException"},
		{"unsigned", "TrentService.ListKeys", ct, `{}`, false, 403, "MissingAuthenticationTokenException"},
		{"malformed json", "TrentService.ListKeys", ct, `{"Limit":`, true, 400, "SerializationException"},
		{"wrong type", "TrentService.ListKeys", ct, `{"Limit":"ten"}`, true, 400, "SerializationException"},
		{"trailing data", "TrentService.ListKeys", ct, `{}{}`, true, 400, "SerializationException"},
		{"unknown field", "TrentService.ListKeys", ct, `{"Limitt":5}`, true, 400, "ValidationException"},
		{"not found", "TrentService.DescribeKey", ct, `{"KeyId":"11111111-2222-4333-8444-555555555555"}`, true, 404, "NotFoundException"},
		{"bad base64", "TrentService.Decrypt", ct, `{"CiphertextBlob":"!!!"}`, true, 400, "SerializationException"},
		{"unsupported", "TrentService.GetKeyPolicy", ct, `{"KeyId":"x","PolicyName":"default"}`, true, 400, "UnsupportedOperationException"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, h, body := rawCall(t, srv, tc.target, tc.contentType, []byte(tc.body), tc.sign)
			if st != tc.status {
				t.Fatalf("status %d, want %d: %s", st, tc.status, body)
			}
			if typ, _ := awsError(t, body); typ != tc.typ || h.Get("X-Amzn-Errortype") != tc.typ {
				t.Fatalf("__type %s, header %s, want %s", typ, h.Get("X-Amzn-Errortype"), tc.typ)
			}
			if h.Get("Content-Type") != ct || h.Get("X-Amzn-Requestid") == "" {
				t.Fatalf("headers %v", h)
			}
		})
	}
	st, h, body := rawCall(t, srv, "TrentService.ListKeys", ct+"; charset=utf-8", nil, true)
	if st != 200 || h.Get("Content-Type") != ct || h.Get("X-Amzn-Requestid") != h.Get("X-Request-Id") {
		t.Fatalf("empty body ListKeys: %d %v %s", st, h, body)
	}
	var lk map[string]any
	if err := json.Unmarshal(body, &lk); err != nil || lk["Truncated"] != false {
		t.Fatalf("ListKeys answer %s", body)
	}
	// The answers are counted in /metrics.
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var exposition strings.Builder
	if _, err := io.Copy(&exposition, resp.Body); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`kms_aws_requests_total{error="",operation="ListKeys",status="200"} 1`,
		`kms_aws_requests_total{error="NotFoundException",operation="DescribeKey",status="404"} 1`,
		`kms_aws_requests_total{error="UnknownOperationException",operation="unsupported",status="400"} 3`,
		`kms_aws_request_duration_seconds_count{operation="Decrypt"} 1`,
	} {
		if !strings.Contains(exposition.String(), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	// /v1 keeps its own error shape and routes.
	st, _ = srv.Do(t, http.MethodGet, "/", nil)
	if st != http.StatusNotFound {
		t.Fatalf("GET / = %d", st)
	}
}
