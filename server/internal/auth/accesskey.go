package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"gorm.io/gorm"

	"github.com/kmsgo/kmsgo/hsm"
	"github.com/kmsgo/kmsgo/starter/kmsapi"
)

// Status of an access key.
type Status string

// Access key statuses.
const (
	StatusEnabled  Status = "Enabled"
	StatusDisabled Status = "Disabled"
)

// Access key id and secret shapes.
const (
	AccessKeyIDPrefix  = "AKKMS"
	accessKeyIDRandLen = 16 // base32 characters after the prefix (80 bits)
	SecretLen          = 40 // characters of a secret access key
	MaxDescriptionLen  = 1024
)

// secretAADPrefix binds a wrapped secret to its purpose and access key id.
const secretAADPrefix = "kmsgo/access-key-secret/v1\x00"

func secretAAD(id string) []byte { return []byte(secretAADPrefix + id) }

// AccessKey is an access key's metadata. The secret is never part of it.
type AccessKey struct {
	ID           string    `json:"access_key_id"`
	Description  string    `json:"description"`
	Status       Status    `json:"status"`
	Policy       Policy    `json:"policy"`
	CreationDate time.Time `json:"creation_date"`
}

// accessKeyRow is the stored form of an access key.
type accessKeyRow struct {
	ID            string `gorm:"primaryKey;size:32"`
	Description   string `gorm:"size:1024;not null"`
	Status        string `gorm:"size:16;not null"`
	Policy        string `gorm:"type:text;not null"`
	WrappedSecret []byte `gorm:"not null"`
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

func (accessKeyRow) TableName() string { return accessKeysTable }

func (r *accessKeyRow) toAccessKey() (AccessKey, error) {
	p, err := ParsePolicy([]byte(r.Policy))
	if err != nil {
		return AccessKey{}, fmt.Errorf("auth: stored policy of %s: %w", r.ID, err)
	}
	return AccessKey{
		ID:           r.ID,
		Description:  r.Description,
		Status:       Status(r.Status),
		Policy:       p,
		CreationDate: r.CreatedAt.UTC(),
	}, nil
}

// newAccessKeyID returns "AKKMS" followed by 16 upper-case base32 characters
// from crypto/rand.
func newAccessKeyID() (string, error) {
	var b [accessKeyIDRandLen * 5 / 8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("auth: random: %w", err)
	}
	return AccessKeyIDPrefix + base32.StdEncoding.EncodeToString(b[:]), nil
}

// newSecret returns SecretLen characters of base64url (240 bits) from
// crypto/rand.
func newSecret() ([]byte, error) {
	raw := make([]byte, SecretLen*6/8)
	defer hsm.Zero(raw)
	if _, err := rand.Read(raw); err != nil {
		return nil, fmt.Errorf("auth: random: %w", err)
	}
	out := make([]byte, SecretLen)
	base64.RawURLEncoding.Encode(out, raw)
	return out, nil
}

// ValidAccessKeyID reports whether id has the shape of an issued access key
// id.
func ValidAccessKeyID(id string) bool {
	rest, ok := strings.CutPrefix(id, AccessKeyIDPrefix)
	if !ok || len(rest) != accessKeyIDRandLen {
		return false
	}
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		if !(c >= 'A' && c <= 'Z' || c >= '2' && c <= '7') {
			return false
		}
	}
	return true
}

func checkID(id string) error {
	if !ValidAccessKeyID(id) {
		return fmt.Errorf("%w: malformed access key id", ErrNotFound)
	}
	return nil
}

// CreateAccessKey issues a new enabled access key with the given description
// and policy. The secret is returned once and never again; the caller must
// not log it.
func (s *Service) CreateAccessKey(ctx context.Context, description string, p Policy) (AccessKey, string, error) {
	row, secret, err := s.newRow(ctx, description, p)
	if err != nil {
		return AccessKey{}, "", err
	}
	if err := s.db.WithContext(ctx).Create(row).Error; err != nil {
		return AccessKey{}, "", fmt.Errorf("auth: create access key: %w", err)
	}
	s.cache.forget(row.ID)
	ak, err := row.toAccessKey()
	if err != nil {
		return AccessKey{}, "", err
	}
	return ak, secret, nil
}

// idemRow is the stored form of an idempotency record (see
// CreateAccessKeyIdempotent).
type idemRow struct {
	Owner       string `gorm:"primaryKey;size:64"`
	Token       string `gorm:"primaryKey;size:64"`
	AccessKeyID string `gorm:"size:32;not null"`
	ParamsHash  string `gorm:"size:64;not null"`
	CreatedAt   time.Time
}

func (idemRow) TableName() string { return idemTable }

// CreateAccessKeyIdempotent is CreateAccessKey with an idempotency token
// scoped to owner (the caller's access key id). The first call with a
// token creates the key and records (owner, token, description, policy) in
// the same transaction; a later call with the same owner, token,
// description and policy creates nothing and returns that access key with
// replay true and no secret (the secret is shown once and is not stored
// in a readable form); other parameters fail with ErrIdempotencyMismatch.
// Concurrent calls with one token create one key. An empty token is plain
// CreateAccessKey.
func (s *Service) CreateAccessKeyIdempotent(ctx context.Context, owner, token, description string, p Policy) (ak AccessKey, secret string, replay bool, err error) {
	if token == "" {
		ak, secret, err = s.CreateAccessKey(ctx, description, p)
		return ak, secret, false, err
	}
	if !kmsapi.ValidIdempotencyToken(token) {
		return AccessKey{}, "", false, fmt.Errorf("%w: idempotency_token must be 1-%d characters of A-Z a-z 0-9 - _ . :", ErrInvalidArgument, kmsapi.MaxIdempotencyToken)
	}
	if len(owner) > 64 || !utf8.ValidString(owner) {
		return AccessKey{}, "", false, fmt.Errorf("%w: owner too long", ErrInvalidArgument)
	}
	policyJSON, err := encodePolicy(p)
	if err != nil {
		return AccessKey{}, "", false, err
	}
	sum := sha256.Sum256([]byte(description + "\x00" + policyJSON))
	want := idemRow{Owner: owner, Token: token, ParamsHash: hex.EncodeToString(sum[:])}
	if ak, err, ok := s.replayCreate(ctx, want); ok {
		return ak, "", err == nil, err
	}
	row, secret, err := s.newRow(ctx, description, p)
	if err != nil {
		return AccessKey{}, "", false, err
	}
	want.AccessKeyID, want.CreatedAt = row.ID, row.CreatedAt
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(&want).Error; err != nil {
			return err
		}
		return tx.Create(row).Error
	})
	if err != nil {
		// A concurrent request with the same token may have won.
		if ak, rerr, ok := s.replayCreate(ctx, want); ok {
			return ak, "", rerr == nil, rerr
		}
		return AccessKey{}, "", false, fmt.Errorf("auth: create access key: %w", err)
	}
	s.cache.forget(row.ID)
	ak, err = row.toAccessKey()
	if err != nil {
		return AccessKey{}, "", false, err
	}
	return ak, secret, false, nil
}

// replayCreate looks up want's token: ok is false when it was never used,
// else the recorded access key or ErrIdempotencyMismatch.
func (s *Service) replayCreate(ctx context.Context, want idemRow) (AccessKey, error, bool) {
	var rows []idemRow
	if err := s.db.WithContext(ctx).Where("owner = ? AND token = ?", want.Owner, want.Token).Limit(1).Find(&rows).Error; err != nil {
		return AccessKey{}, fmt.Errorf("auth: read idempotency record: %w", err), true
	}
	if len(rows) == 0 {
		return AccessKey{}, nil, false
	}
	if rows[0].ParamsHash != want.ParamsHash {
		return AccessKey{}, ErrIdempotencyMismatch, true
	}
	ak, err := s.GetAccessKey(ctx, rows[0].AccessKeyID)
	return ak, err, true
}

// newRow builds the row of a new access key and returns it with the secret.
func (s *Service) newRow(ctx context.Context, description string, p Policy) (*accessKeyRow, string, error) {
	if len(description) > MaxDescriptionLen {
		return nil, "", fmt.Errorf("%w: description longer than %d bytes", ErrInvalidArgument, MaxDescriptionLen)
	}
	if !utf8.ValidString(description) || strings.IndexByte(description, 0) >= 0 {
		return nil, "", fmt.Errorf("%w: description must be UTF-8 without NUL", ErrInvalidArgument)
	}
	policyJSON, err := encodePolicy(p)
	if err != nil {
		return nil, "", err
	}
	id, err := newAccessKeyID()
	if err != nil {
		return nil, "", err
	}
	secret, err := newSecret()
	if err != nil {
		return nil, "", err
	}
	defer hsm.Zero(secret)
	wrapped, err := s.hsm.WrapKey(ctx, secret, secretAAD(id))
	if err != nil {
		return nil, "", fmt.Errorf("auth: wrap secret: %w", err)
	}
	now := s.now().UTC().Truncate(time.Second)
	row := &accessKeyRow{
		ID:            id,
		Description:   description,
		Status:        string(StatusEnabled),
		Policy:        policyJSON,
		WrappedSecret: wrapped,
		CreatedAt:     now,
		UpdatedAt:     now,
	}
	return row, string(secret), nil
}

func encodePolicy(p Policy) (string, error) {
	if err := p.Validate(); err != nil {
		return "", err
	}
	b, err := json.Marshal(p)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrInvalidPolicy, err)
	}
	return string(b), nil
}

// GetAccessKey returns the access key id. ErrNotFound if there is none.
func (s *Service) GetAccessKey(ctx context.Context, id string) (AccessKey, error) {
	if err := checkID(id); err != nil {
		return AccessKey{}, err
	}
	row, err := s.loadRow(ctx, s.db, id)
	if err != nil {
		return AccessKey{}, err
	}
	return row.toAccessKey()
}

func (s *Service) loadRow(ctx context.Context, db *gorm.DB, id string) (*accessKeyRow, error) {
	var row accessKeyRow
	err := db.WithContext(ctx).Where("id = ?", id).Take(&row).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("auth: load access key: %w", err)
	}
	return &row, nil
}

// ListAccessKeys returns every access key, oldest first.
func (s *Service) ListAccessKeys(ctx context.Context) ([]AccessKey, error) {
	var rows []accessKeyRow
	if err := s.db.WithContext(ctx).Order("created_at, id").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("auth: list access keys: %w", err)
	}
	out := make([]AccessKey, 0, len(rows))
	for i := range rows {
		ak, err := rows[i].toAccessKey()
		if err != nil {
			return nil, err
		}
		out = append(out, ak)
	}
	return out, nil
}

// UpdatePolicy replaces the policy of access key id.
func (s *Service) UpdatePolicy(ctx context.Context, id string, p Policy) (AccessKey, error) {
	policyJSON, err := encodePolicy(p)
	if err != nil {
		return AccessKey{}, err
	}
	return s.update(ctx, id, map[string]any{"policy": policyJSON})
}

// EnableAccessKey sets access key id to Enabled.
func (s *Service) EnableAccessKey(ctx context.Context, id string) (AccessKey, error) {
	return s.update(ctx, id, map[string]any{"status": string(StatusEnabled)})
}

// DisableAccessKey sets access key id to Disabled. Requests signed with it
// are refused at once on this replica and within Config.CacheTTL on others.
func (s *Service) DisableAccessKey(ctx context.Context, id string) (AccessKey, error) {
	return s.update(ctx, id, map[string]any{"status": string(StatusDisabled)})
}

// RotateSecret gives access key id a new secret and returns it once. The old
// secret stops working at once on this replica and within Config.CacheTTL on
// others.
func (s *Service) RotateSecret(ctx context.Context, id string) (AccessKey, string, error) {
	if err := checkID(id); err != nil {
		return AccessKey{}, "", err
	}
	secret, err := newSecret()
	if err != nil {
		return AccessKey{}, "", err
	}
	defer hsm.Zero(secret)
	wrapped, err := s.hsm.WrapKey(ctx, secret, secretAAD(id))
	if err != nil {
		return AccessKey{}, "", fmt.Errorf("auth: wrap secret: %w", err)
	}
	ak, err := s.update(ctx, id, map[string]any{"wrapped_secret": wrapped})
	if err != nil {
		return AccessKey{}, "", err
	}
	return ak, string(secret), nil
}

// DeleteAccessKey removes access key id and its remembered nonces.
func (s *Service) DeleteAccessKey(ctx context.Context, id string) error {
	if err := checkID(id); err != nil {
		return err
	}
	defer s.cache.forget(id)
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Where("id = ?", id).Delete(&accessKeyRow{})
		if res.Error != nil {
			return fmt.Errorf("auth: delete access key: %w", res.Error)
		}
		if res.RowsAffected == 0 {
			return ErrNotFound
		}
		if err := tx.Where("access_key_id = ?", id).Delete(&nonceRow{}).Error; err != nil {
			return fmt.Errorf("auth: delete nonces: %w", err)
		}
		return nil
	})
}

// update applies fields to access key id and returns the updated key.
func (s *Service) update(ctx context.Context, id string, fields map[string]any) (AccessKey, error) {
	if err := checkID(id); err != nil {
		return AccessKey{}, err
	}
	defer s.cache.forget(id)
	fields["updated_at"] = s.now().UTC().Truncate(time.Second)
	var row *accessKeyRow
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		// RowsAffected is not checked: MySQL reports 0 for a row whose
		// values did not change. loadRow reports a missing key.
		if err := tx.Model(&accessKeyRow{}).Where("id = ?", id).Updates(fields).Error; err != nil {
			return fmt.Errorf("auth: update access key: %w", err)
		}
		var err error
		row, err = s.loadRow(ctx, tx, id)
		return err
	})
	if err != nil {
		return AccessKey{}, err
	}
	return row.toAccessKey()
}
