// Command gorm shows transparent field encryption with the GORM plugin
// (package ormplugin): a User whose Email is encrypted and searchable
// through a blind index, and whose Phone is encrypted. The program creates
// two users in a SQLite database in a temporary directory, finds one by
// e-mail, and prints what the database row holds next to what the struct
// holds.
//
// Run it against a local kmsd (make run):
//
//	go run ./examples/gorm --credentials .kmsgo-data/admin-credentials.json
//
// or with the connection in the environment (KMS_ENDPOINT, KMS_ACCESS_KEY_ID,
// KMS_SECRET_ACCESS_KEY, optional KMS_REGION).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"

	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/kmsgo/kmsgo/ormplugin"
	"github.com/kmsgo/kmsgo/starter/kmsclient"
)

// User is an ordinary GORM model with two encrypted fields.
//
//   - `gorm:"serializer:kms"` encrypts the field: the column holds
//     "kms1:..." ciphertext, the struct always holds plaintext.
//   - `kms:"index=email_bidx"` also fills EmailBidx with a blind index
//     (HMAC) of the e-mail, so that ormplugin.Equal can find a user by
//     e-mail without decrypting every row.
//   - size:255 leaves room for the ciphertext (ormplugin.CiphertextLen).
type User struct {
	ID        uint
	Name      string  // not encrypted
	Email     string  `gorm:"serializer:kms;size:255" kms:"index=email_bidx"` // encrypted + searchable
	EmailBidx []byte  `gorm:"size:32;index"`                                  // blind index, filled by the plugin
	Phone     *string `gorm:"serializer:kms;size:255"`                        // encrypted; nil stays NULL
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "gorm:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("gorm", flag.ContinueOnError)
	credFile := fs.String("credentials", "", "kmsd credentials JSON (e.g. .kmsgo-data/admin-credentials.json); default: KMS_* environment")
	endpoint := fs.String("endpoint", "", "kmsd URL (default KMS_ENDPOINT or http://127.0.0.1:8400)")
	alias := fs.String("key", "alias/examples-users", "master key alias (created when missing)")
	if err := fs.Parse(args); err != nil {
		return err
	}

	client, err := newClient(*credFile, *endpoint)
	if err != nil {
		return err
	}
	keyID, err := ensureKey(ctx, client, *alias)
	if err != nil {
		return err
	}
	if keyID == "" {
		fmt.Fprintf(stdout, "master key %s (these credentials may not look it up: using it as is)\n", *alias)
	} else {
		fmt.Fprintf(stdout, "master key %s -> %s\n", *alias, keyID)
	}

	// A throwaway SQLite database. Any GORM dialect works the same way.
	dir, err := os.MkdirTemp("", "gorm-example")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	db, err := gorm.Open(sqlite.Open(filepath.Join(dir, "app.db")), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		return err
	}
	defer func() {
		if sqlDB, err := db.DB(); err == nil {
			_ = sqlDB.Close()
		}
	}()

	// The one line that turns encryption on. The plugin asks kmsd for a
	// data key per (table, column) and reuses it (bounded by age and use
	// count); every value gets its own random nonce.
	if err := db.Use(ormplugin.New(client, ormplugin.Config{KeyID: *alias})); err != nil {
		return err
	}
	if err := db.WithContext(ctx).AutoMigrate(&User{}); err != nil {
		return err
	}

	// Write: plain GORM. The structs keep their plaintext and get their IDs.
	phone := "+1 555 0100"
	users := []User{
		{Name: "Alice", Email: "alice@example.com", Phone: &phone},
		{Name: "Bob", Email: "bob@example.com"}, // no phone: NULL
	}
	if err := db.WithContext(ctx).Create(&users).Error; err != nil {
		return err
	}
	fmt.Fprintf(stdout, "created %d users\n", len(users))

	// Find by e-mail. db.Where(&User{Email: ...}) cannot work on a
	// randomized ciphertext (the plugin rejects it); Equal compares the
	// blind index instead.
	var found User
	if err := db.WithContext(ctx).Where(ormplugin.Equal("Email", "alice@example.com")).First(&found).Error; err != nil {
		return fmt.Errorf("find by email: %w", err)
	}
	fmt.Fprintf(stdout, "found by email: id=%d name=%s\n", found.ID, found.Name)

	// What the application sees...
	fmt.Fprintln(stdout, "struct holds:")
	fmt.Fprintf(stdout, "  email      = %s\n", found.Email)
	fmt.Fprintf(stdout, "  phone      = %s\n", deref(found.Phone))

	// ...and what the database holds, read without the plugin's help.
	var row struct {
		Email     string
		EmailBidx []byte
		Phone     *string
	}
	if err := db.WithContext(ctx).Raw("SELECT email, email_bidx, phone FROM users WHERE id = ?", found.ID).Scan(&row).Error; err != nil {
		return err
	}
	fmt.Fprintln(stdout, "database row holds:")
	fmt.Fprintf(stdout, "  email      = %s\n", row.Email)
	fmt.Fprintf(stdout, "  email_bidx = %x\n", row.EmailBidx)
	fmt.Fprintf(stdout, "  phone      = %s\n", deref(row.Phone))

	// Bob has no phone: NULL in the database, nil in the struct.
	var bob User
	if err := db.WithContext(ctx).Where(ormplugin.Equal("Email", "bob@example.com")).First(&bob).Error; err != nil {
		return err
	}
	fmt.Fprintf(stdout, "bob: email=%s phone=%s\n", bob.Email, deref(bob.Phone))

	// A lookup for an address nobody has finds nothing.
	var n int64
	if err := db.WithContext(ctx).Model(&User{}).Where(ormplugin.Equal("Email", "carol@example.com")).Count(&n).Error; err != nil {
		return err
	}
	fmt.Fprintf(stdout, "users with carol@example.com: %d\n", n)
	return nil
}

func deref(s *string) string {
	if s == nil {
		return "NULL"
	}
	return *s
}

// ensureKey returns the key behind alias, creating key and alias when the
// alias does not exist yet.
func ensureKey(ctx context.Context, c *kmsclient.Client, alias string) (string, error) {
	a, err := c.GetAlias(ctx, alias)
	if err == nil {
		return a.KeyID, nil
	}
	if errors.Is(err, kmsclient.ErrAccessDenied) {
		// An application's access key usually may not look up aliases
		// (kms:ListAliases) or create keys: it uses the key its admin
		// created for it, by alias.
		return "", nil
	}
	if !errors.Is(err, kmsclient.ErrNotFound) {
		return "", fmt.Errorf("look up %s: %w", alias, err)
	}
	md, err := c.CreateKey(ctx, kmsclient.CreateKeyInput{Description: "kmsgo examples", Alias: alias})
	if errors.Is(err, kmsclient.ErrAlreadyExists) { // another run created it meanwhile
		if a, err = c.GetAlias(ctx, alias); err == nil {
			return a.KeyID, nil
		}
	}
	if err != nil {
		return "", fmt.Errorf("create key %s: %w", alias, err)
	}
	return md.KeyID, nil
}

// newClient builds a kmsd client from a credentials file (the JSON kmsd
// writes to <data-dir>/admin-credentials.json) or from the environment
// (KMS_ENDPOINT, KMS_ACCESS_KEY_ID, KMS_SECRET_ACCESS_KEY, KMS_REGION),
// both through kmsclient's one loader. Secrets never come from flags, so
// they stay out of shell history.
func newClient(credFile, endpoint string) (*kmsclient.Client, error) {
	var p kmsclient.Profile
	if credFile != "" {
		var err error
		if p, err = kmsclient.LoadCredentialsFile(credFile); err != nil {
			return nil, err
		}
		if p.Endpoint == "" {
			p.Endpoint = os.Getenv(kmsclient.EnvEndpoint)
		}
	} else {
		p.Overlay(nil)
	}
	if endpoint != "" {
		p.Endpoint = endpoint
	}
	if p.AccessKeyID == "" || p.SecretAccessKey == "" {
		return nil, errors.New("no credentials: pass --credentials .kmsgo-data/admin-credentials.json or set KMS_ACCESS_KEY_ID and KMS_SECRET_ACCESS_KEY")
	}
	return kmsclient.New(p.Config())
}
