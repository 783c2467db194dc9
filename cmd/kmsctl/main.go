// Command kmsctl is the command-line client of kmsd: key management,
// encryption, data keys, ENC(...) values for config centers, access keys
// and the audit log.
//
// Credentials come from, in order: the --endpoint/--profile flags, the
// environment (KMS_ENDPOINT, KMS_ACCESS_KEY_ID, KMS_SECRET_ACCESS_KEY,
// KMS_REGION, KMS_PROFILE) and the profile file ~/.config/kmsgo/credentials
// (mode 0600; written by `kmsctl configure`).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	env := Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv}
	code := Execute(ctx, env, os.Args[1:])
	stop()
	os.Exit(code)
}

// Env is the process environment the commands run in (swapped in tests).
type Env struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Getenv func(string) string
}

// exitError carries a specific exit status.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// Execute runs kmsctl with args and returns the exit status: 0 on
// success, 2 for a broken audit chain, 3 for a job that is running
// already (jobs run), 1 for any other error.
func Execute(ctx context.Context, env Env, args []string) int {
	root := newRoot(env)
	root.SetArgs(args)
	root.SetIn(env.Stdin)
	root.SetOut(env.Stdout)
	root.SetErr(env.Stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	fmt.Fprintln(env.Stderr, "kmsctl:", err)
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 1
}
