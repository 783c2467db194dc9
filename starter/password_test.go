package starter_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/kmsgo/kmsgo/server/dbtest"
	"github.com/kmsgo/kmsgo/starter"
)

// The database password lives in etcd (database.password_path, ENC) and is
// rotated there after the server's password changed: the starter moves to
// a new pool with the new password; a wrong password keeps the pool.
// MariaDB only: the PostgreSQL test server trusts local connections, so a
// wrong password would not be refused there.
func TestPasswordRotationMySQL(t *testing.T) {
	// Runs where the MariaDB server is configured (dbtest.Dialects, as
	// every database test; KMS_TEST_REQUIRE_DBS=1 makes its absence fatal).
	for _, d := range dbtest.Dialects(t) {
		if d == dbtest.MySQL {
			t.Run(d, testPasswordRotationMySQL)
		}
	}
}

func testPasswordRotationMySQL(t *testing.T) {
	e := newEnv(t)
	st := etcdStore(t, e)
	dsn, admin := dbtest.OpenDSN(t, dbtest.MySQL)
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	user := "kmsgo_u_" + hex.EncodeToString(b)
	dbName := dsn[strings.LastIndex(dsn, "/")+1:]
	dbName = dbName[:strings.Index(dbName, "?")]
	mustExec := func(q string) {
		t.Helper()
		if err := admin.Exec(q).Error; err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	mustExec("CREATE USER '" + user + "'@'%' IDENTIFIED BY 'first-Pw-1'")
	t.Cleanup(func() { admin.Exec("DROP USER IF EXISTS '" + user + "'@'%'") })
	mustExec("GRANT ALL ON " + dbName + ".* TO '" + user + "'@'%'")
	host := dsn[strings.Index(dsn, "@"):] // @tcp(host:port)/db?params
	userDSN := user + host

	doc := func(pw string) string { return "db:\n  dsn: " + userDSN + "\n  password: " + e.enc(pw) + "\n" }
	st.publish(doc("first-Pw-1"))
	yml := e.write("kmsgo.yaml", "kms: {endpoint: "+e.srv.URL+"}\nconfig:\n  sources: [etcd]\n"+st.settings+
		"database:\n  driver: mysql\n  dsn_path: db.dsn\n  password_path: db.password\n  orm: {key_id: alias/app}\n")
	app, err := starter.Start(context.Background(), starter.File(yml), starter.WithEnviron(e.environ()))
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	db := app.DB()
	if err := db.AutoMigrate(&customer{}); err != nil {
		t.Fatal(err)
	}
	old, _ := db.DB()

	// A wrong password is refused by the server: the pool stays.
	st.publish(doc("wrong-Pw-9"))
	waitFor(t, "the rotation error", func() bool { return dbHealth(t, app).LastError != "" })
	if h := dbHealth(t, app); strings.Contains(h.LastError, "wrong-Pw-9") || !strings.Contains(h.LastError, "db.password") {
		t.Fatalf("error %q: leaks the password or does not name the path", h.LastError)
	}
	if p, _ := db.DB(); p != old {
		t.Fatal("a wrong password replaced the pool")
	}

	// The password changes on the server, then in etcd.
	mustExec("ALTER USER '" + user + "'@'%' IDENTIFIED BY 'second-Pw-2'")
	st.publish(doc("second-Pw-2"))
	waitFor(t, "the rotation", func() bool { p, _ := db.DB(); return p != old })
	if err := db.Create(&customer{Name: "n", Email: "n@example.com"}).Error; err != nil {
		t.Fatalf("write on the new pool: %v", err)
	}
	waitFor(t, "the old pool to close", func() bool { return isSQLClosed(old.Ping()) })
}
