// Package kmsjobs holds the tests that run the maintenance scheduler
// (package jobs) on a real key service (server/internal/kms). They live
// under server/ because jobs is public and may not import server/internal.
package kmsjobs
