package nacos

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	sdklogger "github.com/nacos-group/nacos-sdk-go/v2/common/logger"
)

// The SDK's logger is one process-wide variable, reset by every
// NewConfigClient (it calls logger.InitLogger). clientMu serialises client
// construction with the installation of the redacting logger right after it.
var (
	clientMu sync.Mutex
	sdkSink  atomic.Pointer[sinkConfig]
)

type sinkConfig struct {
	log   *slog.Logger
	level slog.Level
}

// redacted stands for every argument that could carry config content.
const redacted = "[redacted]"

// safeLogger implements the SDK's logger.Logger. The SDK formats raw config
// content into some messages (config_client.refreshContentAndCheck logs
// "content=%s"; cache.writeConfigToFile returns an error whose text holds the
// value; rpc.waitReconnect logs the request body), so this logger keeps only
// the format template and arguments that cannot hold text: numbers,
// booleans and durations. Strings, errors and every other value become
// "[redacted]". Messages without a template (Info(args...)) are reduced to
// their non-text arguments as well.
type safeLogger struct{}

func installSafeLogger(l *slog.Logger, level slog.Level) {
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	sdkSink.Store(&sinkConfig{log: l, level: level})
	sdklogger.SetLogger(safeLogger{})
}

func safeArg(a any) any {
	switch v := a.(type) {
	case bool, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, float32, float64:
		return v
	case time.Duration:
		return v
	default:
		return redacted
	}
}

func safeFormat(format string, args []any) string {
	safe := make([]any, len(args))
	for i, a := range args {
		safe[i] = safeArg(a)
	}
	// %s/%v of "[redacted]" print it; %d of a redacted value prints
	// %!d(string=[redacted]), which still leaks nothing.
	return fmt.Sprintf(format, safe...)
}

func safeJoin(args []any) string {
	parts := make([]string, 0, len(args))
	for _, a := range args {
		parts = append(parts, fmt.Sprint(safeArg(a)))
	}
	return strings.Join(parts, " ")
}

func (safeLogger) emit(level slog.Level, msg string) {
	cfg := sdkSink.Load()
	if cfg == nil || level < cfg.level {
		return
	}
	cfg.log.Log(context.Background(), level, "nacos-sdk: "+msg, slog.String("component", "nacos-sdk"))
}

func (l safeLogger) Info(args ...any)  { l.emit(slog.LevelInfo, safeJoin(args)) }
func (l safeLogger) Warn(args ...any)  { l.emit(slog.LevelWarn, safeJoin(args)) }
func (l safeLogger) Error(args ...any) { l.emit(slog.LevelError, safeJoin(args)) }
func (l safeLogger) Debug(args ...any) { l.emit(slog.LevelDebug, safeJoin(args)) }

func (l safeLogger) Infof(f string, args ...any)  { l.emit(slog.LevelInfo, safeFormat(f, args)) }
func (l safeLogger) Warnf(f string, args ...any)  { l.emit(slog.LevelWarn, safeFormat(f, args)) }
func (l safeLogger) Errorf(f string, args ...any) { l.emit(slog.LevelError, safeFormat(f, args)) }
func (l safeLogger) Debugf(f string, args ...any) { l.emit(slog.LevelDebug, safeFormat(f, args)) }
