package nacostest

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"time"
)

// httpHandler serves the HTTP endpoints the SDK's config client calls: only
// the login of username/password auth.
func (s *Server) httpHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /nacos/v1/auth/users/login", s.login)
	mux.HandleFunc("POST /nacos/v1/auth/login", s.login)
	return mux
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	user, pass := r.Form.Get("username"), r.Form.Get("password")
	if s.opts.Username == "" ||
		subtle.ConstantTimeCompare([]byte(user), []byte(s.opts.Username)) != 1 ||
		subtle.ConstantTimeCompare([]byte(pass), []byte(s.opts.Password)) != 1 {
		http.Error(w, "unknown user!", http.StatusForbidden)
		return
	}
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		http.Error(w, "rng", http.StatusInternalServerError)
		return
	}
	tok := hex.EncodeToString(b[:])
	s.mu.Lock()
	s.tokens[tok] = time.Now().Add(s.opts.TokenTTL)
	s.logins++
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"accessToken": tok,
		"tokenTtl":    int64(s.opts.TokenTTL / time.Second),
		"globalAdmin": false,
		"username":    user,
	})
}
