package httpapi_test

import (
	"bytes"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/kmsgo/kmsgo/server/kmstest"
	"github.com/kmsgo/kmsgo/starter/kmsapi"
)

// TestJSONRoutesRequireJSONContentType: a JSON body sent with another (or
// no) Content-Type is refused with 415 before it is used; JSON with a
// charset parameter is accepted.
func TestJSONRoutesRequireJSONContentType(t *testing.T) {
	srv := kmstest.Start(t)
	body := []byte(`{"description":"x"}`)
	for _, c := range []struct {
		ct   string
		want int
	}{
		{"application/json", http.StatusCreated},
		{"application/json; charset=utf-8", http.StatusCreated},
		{"text/plain", http.StatusUnsupportedMediaType},
		{"application/x-www-form-urlencoded", http.StatusUnsupportedMediaType},
		{"", http.StatusUnsupportedMediaType},
	} {
		req, err := http.NewRequest("POST", srv.URL+"/v1/keys", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if c.ct != "" {
			req.Header.Set("Content-Type", c.ct)
		}
		if err := srv.Sign(req, srv.AccessKeyID, srv.SecretAccessKey, body, time.Now()); err != nil {
			t.Fatal(err)
		}
		resp, err := srv.HTTP.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if c.want == http.StatusUnsupportedMediaType {
			checkError(t, resp, got, c.want, kmsapi.CodeUnsupportedMediaType)
		} else if resp.StatusCode != c.want {
			t.Fatalf("Content-Type %q: %d %s", c.ct, resp.StatusCode, got)
		}
	}
}
