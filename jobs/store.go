package jobs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// State is the persisted state of one job: who holds its lease, when it is
// next due, and how its last run went. Times are Unix milliseconds in UTC
// (zero: never), so that every dialect compares them the same way.
type State struct {
	Job          string `gorm:"primaryKey;size:64"`
	Holder       string `gorm:"size:128;not null;default:''"` // "" when nobody runs it
	LeaseUntilMS int64  `gorm:"not null;default:0"`
	NextRunMS    int64  `gorm:"not null;default:0"` // due when now >= NextRunMS
	// PeriodMS is the due time of the run that is (or was last) claimed by
	// a schedule; on-demand runs leave it alone.
	PeriodMS      int64  `gorm:"not null;default:0"`
	LastStartMS   int64  `gorm:"not null;default:0"`
	LastEndMS     int64  `gorm:"not null;default:0"`
	LastOutcome   string `gorm:"size:16;not null;default:''"` // ok, error, panic, lost
	LastItems     int    `gorm:"not null;default:0"`
	LastError     string `gorm:"size:512;not null;default:''"`
	Runs          int64  `gorm:"not null;default:0"`
	Cursor        string `gorm:"size:1024;not null;default:''"` // resume point of an unfinished run
	LastRunHolder string `gorm:"size:128;not null;default:''"`
}

// TableName is the table holding job state (one row a job).
func (State) TableName() string { return "kmsgo_jobs" }

// Time converts a stored millisecond time (zero: never).
func msTime(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

// LastStart, LastEnd, NextRun and LeaseUntil return the stored times.
func (s State) LastStart() time.Time  { return msTime(s.LastStartMS) }
func (s State) LastEnd() time.Time    { return msTime(s.LastEndMS) }
func (s State) NextRun() time.Time    { return msTime(s.NextRunMS) }
func (s State) LeaseUntil() time.Time { return msTime(s.LeaseUntilMS) }

// Store keeps job leases and run state in a SQL database (SQLite, MySQL or
// PostgreSQL through GORM). Every change is a single compare-and-swap
// UPDATE, so several schedulers on one database run each job once per
// period: the first to move a job's NextRunMS past now wins the period.
type Store struct {
	db *gorm.DB
}

// NewStore creates the kmsgo_jobs table when it is missing.
func NewStore(db *gorm.DB) (*Store, error) {
	if db == nil {
		return nil, fmt.Errorf("%w: nil database", ErrInvalidJob)
	}
	if err := db.AutoMigrate(&State{}); err != nil {
		// Replicas starting together race to create the table; the loser's
		// error is harmless when the table is there now.
		if !db.Migrator().HasTable(&State{}) {
			return nil, fmt.Errorf("jobs: create kmsgo_jobs: %w", err)
		}
	}
	return &Store{db: db}, nil
}

// ensure inserts job's row when it is missing; a new job is due at once.
func (s *Store) ensure(ctx context.Context, job string) error {
	return s.db.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(&State{Job: job}).Error
}

// claim takes job's lease for holder until now+ttl. With due set it claims
// the scheduled run: only when the job is due (NextRunMS <= now) or its
// last holder died (lease expired with a holder set), and it moves
// NextRunMS to next. Without due (an on-demand run) it only needs the lease
// to be free. The update is a compare-and-swap on the row as read, so of
// several claimers exactly one wins. It reports whether holder won, and the
// row as claimed.
func (s *Store) claim(ctx context.Context, job, holder string, now time.Time, ttl time.Duration, due bool, next time.Time) (State, bool, error) {
	if err := s.ensure(ctx, job); err != nil {
		return State{}, false, fmt.Errorf("jobs: %s: %w", job, err)
	}
	st, err := s.Get(ctx, job)
	if err != nil {
		return State{}, false, err
	}
	nowMS := now.UnixMilli()
	free := st.Holder == "" || st.LeaseUntilMS < nowMS || st.Holder == holder
	died := st.Holder != "" && st.LeaseUntilMS < nowMS
	if !free || (due && st.NextRunMS > nowMS && !died) {
		return st, false, nil
	}
	set := map[string]any{
		"holder":         holder,
		"lease_until_ms": now.Add(ttl).UnixMilli(),
		"last_start_ms":  nowMS,
	}
	if due {
		set["next_run_ms"] = next.UnixMilli()
		set["period_ms"] = st.NextRunMS
	}
	res := s.db.WithContext(ctx).Model(&State{}).
		Where("job = ? AND holder = ? AND lease_until_ms = ? AND next_run_ms = ? AND last_start_ms = ?",
			job, st.Holder, st.LeaseUntilMS, st.NextRunMS, st.LastStartMS).
		Updates(set)
	if res.Error != nil {
		return State{}, false, fmt.Errorf("jobs: claim %s: %w", job, res.Error)
	}
	if res.RowsAffected != 1 {
		return st, false, nil
	}
	st.Holder, st.LeaseUntilMS, st.LastStartMS = holder, now.Add(ttl).UnixMilli(), nowMS
	if due {
		st.PeriodMS, st.NextRunMS = st.NextRunMS, next.UnixMilli()
	}
	return st, true, nil
}

// renew extends holder's lease; false means the lease was lost.
func (s *Store) renew(ctx context.Context, job, holder string, until time.Time) (bool, error) {
	res := s.db.WithContext(ctx).Model(&State{}).Where("job = ? AND holder = ?", job, holder).
		Update("lease_until_ms", until.UnixMilli())
	return res.RowsAffected == 1, res.Error
}

// saveCursor records where holder's unfinished run is.
func (s *Store) saveCursor(ctx context.Context, job, holder, cursor string) error {
	res := s.db.WithContext(ctx).Model(&State{}).Where("job = ? AND holder = ?", job, holder).
		Update("cursor", cursor)
	if res.Error != nil {
		return fmt.Errorf("jobs: save cursor of %s: %w", job, res.Error)
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("%w: %s", ErrLeaseLost, job)
	}
	return nil
}

// finish records the outcome of holder's run and frees the lease. A run
// that succeeded clears the cursor; one that failed keeps it so the next
// run resumes there.
func (s *Store) finish(ctx context.Context, job, holder string, r Result, end time.Time) error {
	set := map[string]any{
		"holder":          "",
		"lease_until_ms":  0,
		"last_end_ms":     end.UnixMilli(),
		"last_outcome":    outcome(r.Err),
		"last_items":      r.Items,
		"last_error":      "",
		"runs":            gorm.Expr("runs + 1"),
		"last_run_holder": holder,
	}
	if r.Err != nil {
		set["last_error"] = clip(r.Err.Error(), 512)
	} else {
		set["cursor"] = ""
	}
	res := s.db.WithContext(ctx).Model(&State{}).Where("job = ? AND holder = ?", job, holder).Updates(set)
	if res.Error != nil {
		return fmt.Errorf("jobs: record run of %s: %w", job, res.Error)
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("%w: %s", ErrLeaseLost, job)
	}
	return nil
}

// Get returns one job's state; ErrUnknownJob when it has no row yet.
func (s *Store) Get(ctx context.Context, job string) (State, error) {
	var st State
	err := s.db.WithContext(ctx).Where("job = ?", job).Take(&st).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return State{}, fmt.Errorf("%w: %q", ErrUnknownJob, job)
	}
	if err != nil {
		return State{}, fmt.Errorf("jobs: read %s: %w", job, err)
	}
	return st, nil
}

// List returns every job's state, by name.
func (s *Store) List(ctx context.Context) ([]State, error) {
	var out []State
	if err := s.db.WithContext(ctx).Order("job").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("jobs: list: %w", err)
	}
	return out, nil
}

func outcome(err error) string {
	switch {
	case err == nil:
		return OutcomeOK
	case errors.Is(err, ErrPanic):
		return OutcomePanic
	case errors.Is(err, ErrLeaseLost):
		return OutcomeLost
	default:
		return OutcomeError
	}
}

// clip cuts s to at most n bytes on a rune boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}
