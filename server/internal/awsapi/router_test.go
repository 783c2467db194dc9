package awsapi_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/kmsgo/kmsgo/server/config"
	"github.com/kmsgo/kmsgo/server/internal/awsapi"
	"github.com/kmsgo/kmsgo/server/kmstest"
	"github.com/kmsgo/kmsgo/starter/kmsapi"
)

// TestMountedOnTheRouter: the protocol is one route of kmsd's router. A
// failed authentication is audited as on /v1 (with the protocol and the
// status AWS clients got), a change made through it drops the /v1 key
// descriptions cached for kms.metadata_ttl, and /openapi.json lists
// POST / once, in its media type.
func TestMountedOnTheRouter(t *testing.T) {
	srv := kmstest.Start(t, kmstest.WithConfig(func(c *config.Config) { c.KMS.MetadataTTL = time.Minute; c.Jobs.Enabled = false }))
	admin := adminClient(srv)
	id := aws.ToString(must[*kms.CreateKeyOutput](t)(admin.CreateKey(ctx, &kms.CreateKeyInput{})).KeyMetadata.KeyId)

	_, err := newClient(srv, srv.AccessKeyID, "wrong secret").ListKeys(ctx, &kms.ListKeysInput{})
	wantCode(t, err, awsapi.ExcInvalidSignature, http.StatusBadRequest)
	var authFailure *auditRecord
	for _, r := range auditRecords(t, srv) {
		if r.Action == "kms:Authenticate" {
			authFailure = &r
		}
	}
	if authFailure == nil || authFailure.AccessKeyID != srv.AccessKeyID || authFailure.ReasonCode != kmsapi.CodeUnauthenticated ||
		authFailure.Details["protocol"] != "aws-json-1.1" || authFailure.Details["path"] != "/" || authFailure.Details["status"] != "400" {
		t.Fatalf("failed authentication record %+v", authFailure)
	}

	describe := func() kmsapi.KeyState {
		t.Helper()
		st, body := srv.Do(t, http.MethodGet, "/v1/keys/"+id, nil)
		var md kmsapi.KeyMetadata
		if st != http.StatusOK || json.Unmarshal(body, &md) != nil {
			t.Fatalf("describe: %d %s", st, body)
		}
		return md.KeyState
	}
	if s := describe(); s != kmsapi.KeyStateEnabled { // now cached for a minute
		t.Fatalf("state %s", s)
	}
	must[*kms.DisableKeyOutput](t)(admin.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(id)}))
	if s := describe(); s != kmsapi.KeyStateDisabled {
		t.Fatalf("/v1 describes the key %s after DisableKey through the AWS protocol", s)
	}

	var doc struct {
		Paths map[string]map[string]struct {
			OperationID string `json:"operationId"`
			RequestBody struct {
				Content map[string]any `json:"content"`
			} `json:"requestBody"`
			XAction *string `json:"x-kms-action"`
		} `json:"paths"`
	}
	resp, err := http.Get(srv.URL + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	ops := doc.Paths["/"]
	op, ok := ops["post"]
	if len(ops) != 1 || !ok || op.OperationID != "aws_kms" || op.RequestBody.Content[awsapi.ContentType] == nil || op.XAction != nil {
		t.Fatalf("OpenAPI of POST /: %+v", ops)
	}
}
