package starter

import (
	"database/sql"
	"fmt"
	"slices"
	"sync"

	"gorm.io/gorm"

	"github.com/kmsgo/kmsgo/configcenter"
)

// SourceFactory builds the config sources of one kind from the settings, in
// merge order (etcd makes one per key, then one for the prefix). Packages
// such as github.com/kmsgo/kmsgo/starter/etcd register one in their init, so
// that a service links only the config-center SDK it imports. On error the
// factory closes what it made.
type SourceFactory func(s *Settings) ([]configcenter.Source, error)

// Driver is a database driver the starter can open. Packages such as
// github.com/kmsgo/kmsgo/starter/postgres register one in their init.
type Driver struct {
	// Open opens a connection pool for dsn (it need not connect yet).
	Open func(dsn string) (*sql.DB, error)
	// Dialector returns the GORM dialector for dsn that uses conn as its
	// connection pool.
	Dialector func(dsn string, conn gorm.ConnPool) gorm.Dialector
	// SetPassword returns dsn with its password set to password (for
	// database.password_path). Nil: the driver has no passwords.
	SetPassword func(dsn, password string) (string, error)
}

var (
	regMu   sync.RWMutex
	sources = map[string]SourceFactory{}
	drivers = map[string]Driver{}
)

// sourcePackages and driverPackages say what to import for a name that is
// not registered.
var (
	sourcePackages = map[string]string{
		"etcd":  "github.com/kmsgo/kmsgo/starter/etcd",
		"nacos": "github.com/kmsgo/kmsgo/starter/nacos",
	}
	driverPackages = map[string]string{
		"sqlite":   "github.com/kmsgo/kmsgo/starter/sqlite",
		"mysql":    "github.com/kmsgo/kmsgo/starter/mysql",
		"postgres": "github.com/kmsgo/kmsgo/starter/postgres",
	}
)

// RegisterSource makes a config source type available under name (the
// value used in config.sources). It panics if name is registered twice.
func RegisterSource(name string, f SourceFactory) {
	regMu.Lock()
	defer regMu.Unlock()
	if _, dup := sources[name]; dup || f == nil {
		panic("starter: RegisterSource " + name + " twice or with a nil factory")
	}
	sources[name] = f
}

// RegisterDriver makes a database driver available under name (the value
// of database.driver). It panics if name is registered twice.
func RegisterDriver(name string, d Driver) {
	regMu.Lock()
	defer regMu.Unlock()
	if _, dup := drivers[name]; dup || d.Open == nil || d.Dialector == nil {
		panic("starter: RegisterDriver " + name + " twice or incomplete")
	}
	drivers[name] = d
}

func registeredSources() []string {
	regMu.RLock()
	defer regMu.RUnlock()
	out := []string{"file"}
	for n := range sources {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

func sourceFactory(name string) (SourceFactory, error) {
	regMu.RLock()
	f, ok := sources[name]
	regMu.RUnlock()
	if !ok {
		if pkg, known := sourcePackages[name]; known {
			return nil, fmt.Errorf("%w: config source %q: add import _ %q", ErrNotLinked, name, pkg)
		}
		return nil, fmt.Errorf("%w: unknown config source %q", ErrConfig, name)
	}
	return f, nil
}

func driver(name string) (Driver, error) {
	regMu.RLock()
	d, ok := drivers[name]
	regMu.RUnlock()
	if !ok {
		if pkg, known := driverPackages[name]; known {
			return Driver{}, fmt.Errorf("%w: database driver %q: add import _ %q", ErrNotLinked, name, pkg)
		}
		return Driver{}, fmt.Errorf("%w: unknown database driver %q", ErrConfig, name)
	}
	return d, nil
}
