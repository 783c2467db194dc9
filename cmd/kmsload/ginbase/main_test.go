package main

import (
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHandler(t *testing.T) {
	h := handler()
	for _, tc := range []struct {
		method, path, body string
		want               int
		wantBody           string
	}{
		{"POST", "/post", `{"key_id":"k","plaintext":"AAEC"}`, 200, `{"fields":2,"ok":true}`},
		{"POST", "/post", `{bad`, 400, `{"error":"bad json"}`},
		{"GET", "/healthz", ``, 200, `{"status":"ok"}`},
		{"GET", "/nope", ``, 404, ``},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.body)))
		if rec.Code != tc.want || (tc.wantBody != "" && rec.Body.String() != tc.wantBody) {
			t.Errorf("%s %s: %d %q, want %d %q", tc.method, tc.path, rec.Code, rec.Body, tc.want, tc.wantBody)
		}
	}
}

func TestRunRefusesNonLoopback(t *testing.T) {
	if err := run("0.0.0.0:0"); err == nil {
		t.Fatal("listening on all interfaces was accepted")
	}
}
