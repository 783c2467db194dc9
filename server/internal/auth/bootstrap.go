package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// BootstrapCredentials is the content of the file EnsureBootstrapAdmin
// writes (JSON, mode 0600).
type BootstrapCredentials struct {
	AccessKeyID     string `json:"access_key_id"`
	SecretAccessKey string `json:"secret_access_key"`
	Region          string `json:"region"`
	// Endpoint is the base URL of the kmsd that wrote the file, so that
	// `kmsctl configure --from-file` talks to it (empty when unknown).
	Endpoint string `json:"endpoint,omitempty"`
}

// bootstrapRow records which access key the last bootstrap created. Its one
// row (ID 1) serialises concurrent bootstraps across replicas.
type bootstrapRow struct {
	ID          int    `gorm:"primaryKey;autoIncrement:false"`
	AccessKeyID string `gorm:"size:32;not null"`
	UpdatedAt   time.Time
}

func (bootstrapRow) TableName() string { return bootstrapTable }

// BootstrapDescription is the description of the access key
// EnsureBootstrapAdmin creates.
const BootstrapDescription = "bootstrap admin"

// EnsureBootstrapAdmin creates an admin access key (AdminPolicy) when the
// database holds no access key, and writes its credentials as JSON
// (BootstrapCredentials) to a new file at path with mode 0600. It returns
// false, and writes nothing, when access keys exist already or another
// replica bootstrapped concurrently.
//
// It never overwrites: when the database is empty and path exists, it fails
// with ErrBootstrapFileExists. The secret is written only to the file; it is
// not logged or returned.
func (s *Service) EnsureBootstrapAdmin(ctx context.Context, path string) (created bool, err error) {
	return s.EnsureBootstrapAdminFor(ctx, path, "")
}

// EnsureBootstrapAdminFor is EnsureBootstrapAdmin that also records in the
// file the endpoint (base URL) clients reach this server at.
func (s *Service) EnsureBootstrapAdminFor(ctx context.Context, path, endpoint string) (created bool, err error) {
	var n int64
	if err := s.db.WithContext(ctx).Model(&accessKeyRow{}).Count(&n).Error; err != nil {
		return false, fmt.Errorf("auth: count access keys: %w", err)
	}
	if n > 0 {
		return false, nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return false, fmt.Errorf("%w: %s", ErrBootstrapFileExists, path)
	}
	if err != nil {
		return false, fmt.Errorf("auth: bootstrap file: %w", err)
	}
	keep := false
	defer func() {
		if !keep {
			_ = f.Close()
			_ = os.Remove(path)
		}
	}()

	row, secret, err := s.newRow(ctx, BootstrapDescription, AdminPolicy())
	if err != nil {
		return false, err
	}
	won, err := s.insertBootstrap(ctx, row)
	if err != nil || !won {
		return false, err
	}
	content, err := json.MarshalIndent(BootstrapCredentials{
		AccessKeyID: row.ID, SecretAccessKey: secret, Region: s.region, Endpoint: endpoint,
	}, "", "  ")
	if err == nil {
		content = append(content, '\n')
		_, err = f.Write(content)
		clear(content)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		// Nobody can learn the secret: do not leave the key behind.
		_ = s.db.WithContext(context.WithoutCancel(ctx)).Where("id = ?", row.ID).Delete(&accessKeyRow{}).Error
		return false, fmt.Errorf("auth: write bootstrap file: %w", err)
	}
	keep = true
	return true, nil
}

// insertBootstrap inserts row as the bootstrap key unless another replica
// did so first: the bootstrap marker row is advanced with compare-and-swap
// from the key it named before, and only if that key no longer exists.
func (s *Service) insertBootstrap(ctx context.Context, row *accessKeyRow) (bool, error) {
	won := false
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		now := s.now().UTC().Truncate(time.Second)
		if err := tx.Clauses(clause.OnConflict{DoNothing: true}).
			Create(&bootstrapRow{ID: 1, AccessKeyID: "", UpdatedAt: now}).Error; err != nil {
			return fmt.Errorf("auth: bootstrap marker: %w", err)
		}
		var marker bootstrapRow
		if err := tx.Where("id = ?", 1).Take(&marker).Error; err != nil {
			return fmt.Errorf("auth: bootstrap marker: %w", err)
		}
		var n int64
		if err := tx.Model(&accessKeyRow{}).Count(&n).Error; err != nil {
			return fmt.Errorf("auth: count access keys: %w", err)
		}
		if n > 0 {
			return nil
		}
		res := tx.Model(&bootstrapRow{}).
			Where("id = ? AND access_key_id = ?", 1, marker.AccessKeyID).
			Updates(map[string]any{"access_key_id": row.ID, "updated_at": now})
		if res.Error != nil {
			return fmt.Errorf("auth: bootstrap marker: %w", res.Error)
		}
		if res.RowsAffected != 1 {
			return nil
		}
		if err := tx.Create(row).Error; err != nil {
			return fmt.Errorf("auth: create bootstrap key: %w", err)
		}
		won = true
		return nil
	})
	if err != nil {
		return false, err
	}
	return won, nil
}
