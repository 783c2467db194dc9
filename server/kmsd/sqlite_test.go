package kmsd

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/kmsgo/kmsgo/server/config"
)

func TestOpenDBAppliesSQLiteSynchronous(t *testing.T) {
	for _, tc := range []struct {
		mode, audit string
		want        int // PRAGMA synchronous: 1 NORMAL, 2 FULL
	}{
		{"", "", 1}, {"", config.AuditSyncGroup, 1}, {"", config.AuditSyncStrict, 2},
		{"full", "", 2}, {"normal", "", 1}, {"normal", config.AuditSyncStrict, 1},
	} {
		t.Run("mode="+tc.mode+",audit="+tc.audit, func(t *testing.T) {
			c := config.Defaults()
			c.DataDir = t.TempDir()
			c.Database.SQLiteSynchronous = tc.mode
			c.Audit.Sync = tc.audit
			db, err := openDB(c)
			if err != nil {
				t.Fatal(err)
			}
			sqlDB, err := db.DB()
			if err != nil {
				t.Fatal(err)
			}
			defer sqlDB.Close()
			var got int
			if err := db.Raw("PRAGMA synchronous").Scan(&got).Error; err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("PRAGMA synchronous = %d, want %d", got, tc.want)
			}
		})
	}
}

// TestOpenDBFilesArePrivate: the default SQLite database and the WAL/SHM
// files SQLite creates beside it are 0600, also when the file pre-existed
// with a looser mode.
func TestOpenDBFilesArePrivate(t *testing.T) {
	for _, preexisting := range []bool{false, true} {
		c := config.Defaults()
		c.DataDir = t.TempDir()
		path := filepath.Join(c.DataDir, "kms.db")
		if preexisting {
			if err := os.WriteFile(path, nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		db, err := openDB(c)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Exec("CREATE TABLE t (x INTEGER)").Error; err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"kms.db", "kms.db-wal", "kms.db-shm"} {
			st, err := os.Stat(filepath.Join(c.DataDir, name))
			if err != nil {
				t.Fatal(err)
			}
			if mode := st.Mode().Perm(); mode != 0o600 {
				t.Errorf("preexisting=%v: %s mode = %o, want 600", preexisting, name, mode)
			}
		}
		sqlDB, _ := db.DB()
		sqlDB.Close()
	}
}
