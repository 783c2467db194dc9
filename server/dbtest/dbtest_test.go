package dbtest

import (
	"testing"

	"gorm.io/gorm"
)

func TestOpenIsolated(t *testing.T) {
	type row struct {
		ID   uint
		Name string
	}
	ForEach(t, func(t *testing.T, db *gorm.DB) {
		if err := db.AutoMigrate(&row{}); err != nil {
			t.Fatal(err)
		}
		if err := db.Create(&row{Name: "a"}).Error; err != nil {
			t.Fatal(err)
		}
		var n int64
		db.Model(&row{}).Count(&n)
		if n != 1 {
			t.Fatalf("count = %d, want 1", n)
		}
	})
}

func TestReplaceMySQLDB(t *testing.T) {
	cases := []struct{ in, want string }{
		{"root:@tcp(127.0.0.1:3306)/test?parseTime=true", "root:@tcp(127.0.0.1:3306)/x?parseTime=true"},
		{"root:@tcp(127.0.0.1:3306)/test", "root:@tcp(127.0.0.1:3306)/x?parseTime=true"},
		{"u:p@tcp(h:1)/test?charset=utf8mb4", "u:p@tcp(h:1)/x?charset=utf8mb4&parseTime=true"},
	}
	for _, c := range cases {
		if got := replaceMySQLDB(c.in, "x"); got != c.want {
			t.Errorf("replaceMySQLDB(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
