package awsapi_test

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"gorm.io/gorm"

	"github.com/kmsgo/kmsgo/server/audit"
	"github.com/kmsgo/kmsgo/server/config"
	"github.com/kmsgo/kmsgo/server/dbtest"
	"github.com/kmsgo/kmsgo/server/internal/store"
	"github.com/kmsgo/kmsgo/server/kmstest"
)

// TestStateChangesAuditedIntentFirst: over the AWS protocol too, a state
// change is preceded by a durable intent record; while audit inserts fail,
// CreateKey and DisableKey fail and change nothing (issue 9 item 3).
func TestStateChangesAuditedIntentFirst(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *gorm.DB) {
		srv := kmstest.Start(t, kmstest.WithDB(db), kmstest.WithConfig(func(c *config.Config) { c.Jobs.Enabled = false }))
		c := adminClient(srv)
		out, err := c.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("aws intent")})
		if err != nil {
			t.Fatal(err)
		}
		id := aws.ToString(out.KeyMetadata.KeyId)
		srv.FlushAudit(t)
		page, err := audit.List(ctx, db, audit.ListOptions{Limit: audit.MaxListLimit, Action: "kms:CreateKey"})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Records) != 2 || page.Records[0].Result != audit.ResultIntent || page.Records[1].Result != audit.ResultOK ||
			page.Records[1].KeyID != id || page.Records[1].Details[audit.DetailIntent] != strconv.FormatInt(page.Records[0].Seq, 10) {
			t.Fatalf("CreateKey records %+v, want intent then outcome naming it", page.Records)
		}

		var keys int64
		db.Table("kms_keys").Count(&keys)
		var add, unblock string
		switch db.Dialector.Name() {
		case "sqlite":
			add, unblock = "CREATE TRIGGER audit_block BEFORE INSERT ON kms_audit_records BEGIN SELECT RAISE(ABORT, 'blocked'); END", "DROP TRIGGER audit_block"
		default:
			add = fmt.Sprintf("ALTER TABLE kms_audit_records ADD CONSTRAINT audit_block CHECK (time_us < %d)", time.Now().UnixMicro())
			unblock = "ALTER TABLE kms_audit_records DROP CONSTRAINT audit_block"
		}
		if err := db.Exec(add).Error; err != nil {
			t.Fatal(err)
		}
		if _, err := c.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("unaudited")}); err == nil || status(err) < 500 {
			t.Fatalf("CreateKey with audit blocked: %v", err)
		}
		if _, err := c.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(id)}); err == nil || status(err) < 500 {
			t.Fatalf("DisableKey with audit blocked: %v", err)
		}
		if err := db.Exec(unblock).Error; err != nil {
			t.Fatal(err)
		}
		var after int64
		db.Table("kms_keys").Count(&after)
		if after != keys {
			t.Fatalf("%d keys after a blocked CreateKey, want %d", after, keys)
		}
		if k, err := store.New(db).GetKey(ctx, id); err != nil || k.State != "Enabled" {
			t.Fatalf("key after a blocked DisableKey: %v %v", k.State, err)
		}
	})
}
