// Command starter-etcd is a small HTTP service wired by the kmsgo starter:
// its settings live in etcd (with secrets as ENC(...) values, the database
// DSN among them), and its customers table goes through ormplugin, so the
// e-mail column is stored encrypted and still searchable by equality. The
// service has no crypto code of its own.
//
//	go run ./examples/starter-etcd --config examples/starter-etcd/kmsgo.yaml
//
// Routes:
//
//	POST /customers          {"name": "...", "email": "..."}
//	GET  /customers/{id}
//	GET  /customers?email=   equality search through the blind index
//	GET  /greeting           a config value, hot-reloaded from etcd
//	GET  /healthz            the starter's readiness report
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"time"

	"github.com/kmsgo/kmsgo/ormplugin"
	"github.com/kmsgo/kmsgo/starter"
	_ "github.com/kmsgo/kmsgo/starter/etcd"   // config source "etcd"
	_ "github.com/kmsgo/kmsgo/starter/sqlite" // database driver "sqlite"
)

// Customer is stored with its e-mail encrypted; EmailBidx is its blind
// index for Equal.
type Customer struct {
	ID        uint   `json:"id"`
	Name      string `json:"name"`
	Email     string `json:"email" gorm:"serializer:kms;size:255" kms:"index=email_bidx"`
	EmailBidx []byte `json:"-" gorm:"size:32;index"`
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	err := run(ctx, os.Args[1:], func(addr string) { fmt.Println("listening on http://" + addr) })
	if err != nil {
		fmt.Fprintln(os.Stderr, "starter-etcd:", err)
		os.Exit(1)
	}
}

// run serves until ctx is done; onListen receives the bound address.
func run(ctx context.Context, args []string, onListen func(addr string)) error {
	fs := flag.NewFlagSet("starter-etcd", flag.ContinueOnError)
	config := fs.String("config", "kmsgo.yaml", "starter config file (KMSGO_* variables override)")
	listen := fs.String("listen", "127.0.0.1:8080", "HTTP listen address")
	if err := fs.Parse(args); err != nil {
		return err
	}

	app, err := starter.Start(ctx, starter.File(*config))
	if err != nil {
		return err
	}
	defer app.Close()
	db := app.DB()
	if err := db.AutoMigrate(&Customer{}); err != nil {
		return err
	}

	mux := http.NewServeMux()
	mux.HandleFunc("POST /customers", func(w http.ResponseWriter, r *http.Request) {
		var c Customer
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&c); err != nil || c.Email == "" {
			http.Error(w, "want {\"name\", \"email\"}", http.StatusBadRequest)
			return
		}
		c.ID = 0
		if err := db.WithContext(r.Context()).Create(&c).Error; err != nil {
			http.Error(w, "cannot store customer", http.StatusInternalServerError)
			return
		}
		reply(w, http.StatusCreated, c)
	})
	mux.HandleFunc("GET /customers/{id}", func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
		var c Customer
		if err != nil || db.WithContext(r.Context()).First(&c, id).Error != nil {
			http.NotFound(w, r)
			return
		}
		reply(w, http.StatusOK, c)
	})
	mux.HandleFunc("GET /customers", func(w http.ResponseWriter, r *http.Request) {
		var cs []Customer
		if err := db.WithContext(r.Context()).Where(ormplugin.Equal("Email", r.URL.Query().Get("email"))).Find(&cs).Error; err != nil {
			http.Error(w, "cannot search", http.StatusInternalServerError)
			return
		}
		reply(w, http.StatusOK, cs)
	})
	mux.HandleFunc("GET /greeting", func(w http.ResponseWriter, r *http.Request) {
		reply(w, http.StatusOK, map[string]string{"greeting": app.Config().Snapshot().String("app.greeting", "hello")})
	})
	mux.Handle("GET /healthz", app.HealthHandler())

	l, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	onListen(l.Addr().String())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return app.Close()
}

func reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
