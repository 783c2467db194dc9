package main

import (
	"strings"
	"testing"
)

// TestCreateWithIdempotencyToken: re-running "keys create" or
// "access-keys create" with the same --idempotency-token answers the
// object the first run created; other flags with that token are refused;
// a re-run without a token creates a new key.
func TestCreateWithIdempotencyToken(t *testing.T) {
	_, c := configured(t)
	var first, again, other keyJSON
	c.json(&first, "keys", "create", "--alias", "alias/billing", "--idempotency-token", "deploy-42-billing")
	c.json(&again, "keys", "create", "--alias", "alias/billing", "--idempotency-token", "deploy-42-billing")
	if first.KeyID == "" || again.KeyID != first.KeyID {
		t.Fatalf("re-run answered %q, first run %q", again.KeyID, first.KeyID)
	}
	c.fail(1, "IdempotencyMismatch", "", "keys", "create", "--alias", "alias/other", "--idempotency-token", "deploy-42-billing")
	c.fail(1, "idempotency token", "", "keys", "create", "--idempotency-token", "no spaces allowed")
	c.json(&other, "keys", "create", "--description", "no token")
	c.json(&again, "keys", "create", "--description", "no token")
	if other.KeyID == again.KeyID {
		t.Fatal("two runs without a token answered the same key")
	}

	var ak1, ak2 struct {
		AccessKeyID      string `json:"access_key_id"`
		SecretAccessKey  string `json:"secret_access_key"`
		IdempotentReplay bool   `json:"idempotent_replay"`
	}
	c.json(&ak1, "access-keys", "create", "--admin", "--description", "ops", "--idempotency-token", "deploy-42-ops")
	c.json(&ak2, "access-keys", "create", "--admin", "--description", "ops", "--idempotency-token", "deploy-42-ops")
	if ak1.SecretAccessKey == "" || ak2.AccessKeyID != ak1.AccessKeyID || ak2.SecretAccessKey != "" || !ak2.IdempotentReplay {
		t.Fatalf("access key re-run: first %+v, again %+v", ak1.AccessKeyID, ak2)
	}
	out := c.ok("", "access-keys", "create", "--admin", "--description", "ops", "--idempotency-token", "deploy-42-ops")
	if !strings.Contains(out, "Idempotent replay") || strings.Contains(out, "Secret access key") {
		t.Fatalf("table output of a replay:\n%s", out)
	}
}
