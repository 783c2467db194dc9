package configcenter_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kmsgo/kmsgo/configcenter"
	"github.com/kmsgo/kmsgo/configcenter/file"
	"github.com/kmsgo/kmsgo/server/kmstest"
	"github.com/kmsgo/kmsgo/starter/kmsclient"
)

// A config file holds a secret as ENC(...), made by `kmsctl enc`; the
// service reads it decrypted. Printing a snapshot never shows a value.
func Example() {
	ctx := context.Background()
	kmsd := kmstest.Start(&testing.T{}) // a real in-process kmsd; in production: your kmsd URL
	client, _ := kmsclient.New(kmsclient.Config{Endpoint: kmsd.URL, AccessKeyID: kmsd.AccessKeyID,
		SecretAccessKey: kmsd.SecretAccessKey, Region: kmsd.Region})

	// What `kmsctl enc --key alias/app-config 's3cret'` prints:
	_, _ = client.CreateKey(ctx, kmsclient.CreateKeyInput{Alias: "alias/app-config"})
	out, _ := client.Encrypt(ctx, "alias/app-config", []byte("s3cret"), nil)
	enc := "ENC(" + base64.StdEncoding.EncodeToString(out.CiphertextBlob) + ")"

	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "app.yaml")
	_ = os.WriteFile(path, []byte("db:\n  user: app\n  password: "+enc+"\n  pool: 10\n"), 0o600)

	cfg, err := configcenter.New(ctx, configcenter.Options{
		Sources:   []configcenter.Source{file.New(path, file.Options{})},
		Decrypter: client,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cfg.Close()

	var db struct {
		User     string `koanf:"user"`
		Password string `koanf:"password"`
		Pool     int    `koanf:"pool"`
	}
	_ = cfg.Snapshot().BindPath("db", &db)
	fmt.Println(db.User, db.Password, db.Pool)
	fmt.Println(cfg.Snapshot().String("db.password", ""), cfg.Snapshot().Duration("db.timeout", 3e9))
	fmt.Println(cfg.Snapshot().Keys())
	fmt.Println(strings.Contains(fmt.Sprintf("%v %+v %#v", cfg.Snapshot(), cfg.Snapshot(), cfg), "s3cret"))
	// Output:
	// app s3cret 10
	// s3cret 3s
	// [db.password db.pool db.user]
	// false
}
