package audit

import (
	"context"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"
)

// List limits.
const (
	DefaultListLimit = 100
	MaxListLimit     = 1000
)

// ListOptions selects records for List. Zero values mean "no filter".
type ListOptions struct {
	Limit       int       // page size; default DefaultListLimit, at most MaxListLimit
	After       string    // Page.Next of the previous page
	Since       time.Time // only records at or after this time
	ReplicaID   string
	AccessKeyID string
	KeyID       string
	Action      string
}

// Page is one page of records, oldest first.
type Page struct {
	Records []Record `json:"records"`
	Next    string   `json:"next,omitempty"` // empty on the last page
}

// List returns records in (time, replica, seq) order. It does not verify the
// chain (use Verify); a record whose details column cannot be decoded is
// returned with nil Details.
func List(ctx context.Context, db *gorm.DB, opts ListOptions) (Page, error) {
	limit := opts.Limit
	if limit <= 0 {
		limit = DefaultListLimit
	}
	limit = min(limit, MaxListLimit)
	q := db.WithContext(ctx).Model(&row{})
	if opts.After != "" {
		c, err := decodeCursor(opts.After)
		if err != nil {
			return Page{}, err
		}
		q = q.Where("time_us > ? OR (time_us = ? AND replica_id > ?) OR (time_us = ? AND replica_id = ? AND seq > ?)",
			c.timeUS, c.timeUS, c.replica, c.timeUS, c.replica, c.seq)
	}
	if !opts.Since.IsZero() {
		q = q.Where("time_us >= ?", opts.Since.UnixMicro())
	}
	for col, v := range map[string]string{
		"replica_id": opts.ReplicaID, "access_key_id": opts.AccessKeyID,
		"key_id": opts.KeyID, "action": opts.Action,
	} {
		if v != "" {
			q = q.Where(col+" = ?", v)
		}
	}
	var rows []row
	if err := q.Order("time_us, replica_id, seq").Limit(limit + 1).Find(&rows).Error; err != nil {
		return Page{}, fmt.Errorf("audit: list: %w", err)
	}
	var p Page
	if len(rows) > limit {
		rows = rows[:limit]
		last := rows[limit-1]
		p.Next = cursor{timeUS: last.TimeUS, seq: last.Seq, replica: last.ReplicaID}.encode()
	}
	p.Records = make([]Record, 0, len(rows))
	for i := range rows {
		rec, err := rows[i].record()
		if err != nil { // tampered details column: show the rest
			w := rows[i]
			w.Details = ""
			rec, _ = w.record()
		}
		p.Records = append(p.Records, rec)
	}
	return p, nil
}

// cursor is the position of the last record of a page.
type cursor struct {
	timeUS  int64
	seq     int64
	replica string
}

const cursorPrefix = "v1."

// encode gives "v1.<time_us>.<seq>.<replica>" in unpadded base64url.
func (c cursor) encode() string {
	s := cursorPrefix + strconv.FormatInt(c.timeUS, 10) + "." + strconv.FormatInt(c.seq, 10) + "." + c.replica
	return base64.RawURLEncoding.EncodeToString([]byte(s))
}

// decodeCursor accepts exactly the strings encode produces.
func decodeCursor(s string) (cursor, error) {
	if len(s) > 256 {
		return cursor{}, ErrInvalidCursor
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil {
		return cursor{}, ErrInvalidCursor
	}
	rest, ok := strings.CutPrefix(string(b), cursorPrefix)
	if !ok {
		return cursor{}, ErrInvalidCursor
	}
	parts := strings.SplitN(rest, ".", 3)
	if len(parts) != 3 {
		return cursor{}, ErrInvalidCursor
	}
	var c cursor
	if c.timeUS, err = strconv.ParseInt(parts[0], 10, 64); err != nil {
		return cursor{}, ErrInvalidCursor
	}
	if c.seq, err = strconv.ParseInt(parts[1], 10, 64); err != nil || c.seq < 1 {
		return cursor{}, ErrInvalidCursor
	}
	c.replica = parts[2]
	if c.replica == "" || checkText("replica", c.replica, maxReplicaID) != nil {
		return cursor{}, ErrInvalidCursor
	}
	if c.encode() != s { // reject non-canonical forms ("+1", "01", ...)
		return cursor{}, ErrInvalidCursor
	}
	return c, nil
}
