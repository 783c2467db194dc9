package store_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/kmsgo/kmsgo/server/internal/migrate"
	"github.com/kmsgo/kmsgo/server/internal/store"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

func Example() {
	dir, _ := filepathTemp()
	db, err := gorm.Open(sqlite.Open(filepath.Join(dir, "kms.db")), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		panic(err)
	}
	if err := migrate.Apply(db, store.Migrations()...); err != nil {
		panic(err)
	}
	s := store.New(db)
	now := time.Now().UTC()
	k := &store.Key{ID: "example", KeySpec: store.KeySpecAES256, ProtectionLevel: store.ProtectionHSM,
		Origin: store.OriginKMS, State: store.KeyStateEnabled, Revision: 1, CreatedAt: now, UpdatedAt: now}
	ctx := context.Background()
	if err := s.CreateKey(ctx, k, nil, nil, nil); err != nil {
		panic(err)
	}
	err = s.UpdateKey(ctx, "example", 1, map[string]any{"state": store.KeyStateDisabled}, now)
	fmt.Println(err)
	err = s.UpdateKey(ctx, "example", 1, map[string]any{"state": store.KeyStateEnabled}, now)
	fmt.Println(err)
	// Output:
	// <nil>
	// store: concurrent modification
}

func filepathTemp() (string, error) { return os.MkdirTemp("", "store-example-") }
