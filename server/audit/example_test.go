package audit_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"

	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/kmsgo/kmsgo/server/audit"
	"github.com/kmsgo/kmsgo/server/internal/migrate"
)

func Example() {
	dir, _ := os.MkdirTemp("", "audit-example")
	defer os.RemoveAll(dir)
	db, err := gorm.Open(sqlite.Open(filepath.Join(dir, "kms.db")), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		panic(err)
	}
	if err := migrate.Apply(db, audit.Migrations()...); err != nil {
		panic(err)
	}

	chainKey := bytes.Repeat([]byte{0x42}, 32) // from kmsd's secret config in real life
	l, err := audit.NewLogger(db, audit.Config{ReplicaID: "kmsd-1", ChainKey: chainKey})
	if err != nil {
		panic(err)
	}
	err = l.Append(context.Background(), audit.Record{
		AccessKeyID: "AKIDEXAMPLE", Action: "kms:Decrypt", KeyID: "9f1c", KeyVersion: 2,
		Result: audit.ResultOK, RequestID: "req-1", SourceAddr: "10.0.0.7:51234",
		Details: map[string]string{"ctx.tenant": audit.HMACValue(chainKey, []byte("acme"))},
	})
	if err != nil {
		// fail the request: the audit record is not durable
		panic(err)
	}
	l.Close()

	// Tampering with a stored record is detected.
	db.Exec("UPDATE kms_audit_records SET action = 'kms:Encrypt'")
	rep, err := audit.Verify(context.Background(), db, chainKey)
	if err != nil {
		panic(err)
	}
	fmt.Println(rep.OK, rep.FirstBroken.ReplicaID, rep.FirstBroken.Seq, rep.FirstBroken.Reason)
	// Output: false kmsd-1 1 hash_mismatch
}

func ExampleHMACValue() {
	key := bytes.Repeat([]byte{0x42}, 32)
	d := audit.HMACValue(key, []byte("acme"))
	fmt.Println(len(d), d == audit.HMACValue(key, []byte("acme")), d == audit.HMACValue(key, []byte("Acme")))
	// Output: 64 true false
}

func ExampleList() {
	dir, _ := os.MkdirTemp("", "audit-example")
	defer os.RemoveAll(dir)
	db, _ := gorm.Open(sqlite.Open(filepath.Join(dir, "kms.db")), &gorm.Config{Logger: logger.Discard})
	_ = migrate.Apply(db, audit.Migrations()...)
	l, _ := audit.NewLogger(db, audit.Config{ReplicaID: "kmsd-1", ChainKey: bytes.Repeat([]byte{1}, 32)})
	for _, action := range []string{"kms:CreateKey", "kms:DisableKey", "kms:EnableKey"} {
		_ = l.Append(context.Background(), audit.Record{Action: action, KeyID: "k1", Result: audit.ResultOK})
	}
	l.Close()

	opts := audit.ListOptions{KeyID: "k1", Limit: 2}
	for {
		page, err := audit.List(context.Background(), db, opts)
		if err != nil {
			panic(err)
		}
		for _, r := range page.Records {
			fmt.Println(r.Seq, r.Action)
		}
		if page.Next == "" {
			break
		}
		opts.After = page.Next
	}
	// Output:
	// 1 kms:CreateKey
	// 2 kms:DisableKey
	// 3 kms:EnableKey
}

// ExampleLogger_AppendHead shows the intent/outcome protocol of a state
// change: the intent is durable before the change, the outcome names it,
// and Verify reports an intent without an outcome as "outcome unknown".
func ExampleLogger_AppendHead() {
	dir, _ := os.MkdirTemp("", "audit-intent")
	defer os.RemoveAll(dir)
	db, err := gorm.Open(sqlite.Open(filepath.Join(dir, "kms.db")), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		panic(err)
	}
	if err := migrate.Apply(db, audit.Migrations()...); err != nil {
		panic(err)
	}
	chainKey := bytes.Repeat([]byte{0x42}, 32)
	l, err := audit.NewLogger(db, audit.Config{ReplicaID: "kmsd-1", ChainKey: chainKey})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	for _, req := range []string{"req-1", "req-2"} {
		intent, err := l.AppendHead(ctx, audit.Record{Action: "kms:DisableKey", KeyID: "9f1c", Result: audit.ResultIntent, RequestID: req})
		if err != nil {
			panic(err) // answer 503, change nothing
		}
		// ... make the change; req-2's outcome is never written ...
		if req == "req-1" {
			err = l.Append(ctx, audit.Record{Action: "kms:DisableKey", KeyID: "9f1c", Result: audit.ResultOK, RequestID: req,
				Details: map[string]string{audit.DetailIntent: fmt.Sprint(intent.Seq)}})
			if err != nil {
				panic(err)
			}
		}
	}
	l.Close()
	rep, err := audit.Verify(ctx, db, chainKey)
	if err != nil {
		panic(err)
	}
	u := rep.OutcomeUnknown[0]
	fmt.Println(rep.OK, rep.OutcomeUnknownCount, u.Seq, u.RequestID)
	// Output: true 1 3 req-2
}
