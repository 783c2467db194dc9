package kmstest_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/kmsgo/kmsgo/server/kmstest"
)

// A test starts a real kmsd and talks to it with the admin credentials, or
// with a limited access key created for the test.
func ExampleStart() {
	t := &testing.T{} // in a real test: the *testing.T of the test function
	srv := kmstest.Start(t)
	status, _ := srv.Do(t, http.MethodPost, "/v1/keys", map[string]any{"alias": "alias/example"})
	fmt.Println(status)

	id, secret := srv.CreateAccessKey(t, `{"statements":[{"effect":"Allow","actions":["kms:Encrypt"],"resources":["alias/example"]}]}`)
	status, _ = srv.DoAs(t, id, secret, http.MethodGet, "/v1/keys", nil)
	fmt.Println(status)
}
