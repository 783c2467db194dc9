package starter_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Every test must leave no goroutine behind once its App is closed and its
// servers are stopped.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
