// Package kmsdinternal gives the tests under server/ and the test helpers
// there (server/kmstest) the internal services of a kmsd.App, which the
// public API of package kmsd does not expose: Of(app).KMS, say.
package kmsdinternal

import (
	"github.com/kmsgo/kmsgo/server/internal/auth"
	"github.com/kmsgo/kmsgo/server/internal/httpapi"
	"github.com/kmsgo/kmsgo/server/internal/kms"
)

// Services are the internal services of one kmsd.App.
type Services struct {
	KMS     *kms.Service
	Auth    *auth.Service
	Handler *httpapi.Server
}

// Of returns the Services of app, a *kmsd.App (it panics on anything else).
// Package kmsd sets it when it is initialized.
var Of func(app any) Services
