// Command ginbase is the bare gin route that cmd/kmsload/bench.sh loads in
// the same run as kmsd: the ceiling of one HTTP JSON round trip through gin
// on this machine. POST /post decodes a JSON body and answers a small JSON
// object; GET /healthz answers {"status":"ok"}. It listens on loopback
// only and prints "ginbase: listening on http://ADDR" once ready.
//
//	ginbase [--listen 127.0.0.1:0]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/gin-gonic/gin"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "loopback address to listen on")
	flag.Parse()
	if err := run(*listen); err != nil {
		fmt.Fprintln(os.Stderr, "ginbase:", err)
		os.Exit(1)
	}
}

// handler is the bare route: what a JSON API needs at least (read and
// decode the body, encode an answer), and nothing else.
func handler() http.Handler {
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	e.POST("/post", func(c *gin.Context) {
		var in map[string]any
		if err := c.ShouldBindJSON(&in); err != nil {
			c.JSON(http.StatusBadRequest, gin.H{"error": "bad json"})
			return
		}
		c.JSON(http.StatusOK, gin.H{"ok": true, "fields": len(in)})
	})
	e.GET("/healthz", func(c *gin.Context) {
		c.Data(http.StatusOK, "application/json; charset=utf-8", []byte(`{"status":"ok"}`))
	})
	return e
}

func run(listen string) error {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return errors.New("--listen must be a loopback address")
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: handler()}
	fmt.Printf("ginbase: listening on http://%s\n", ln.Addr())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		_ = srv.Shutdown(context.Background())
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
