package starter

import (
	"errors"
	"strings"
	"testing"
)

// A source or driver whose package is not imported fails with
// ErrNotLinked and the import to add. (This test binary links them all,
// so the test unregisters them for its duration.)
func TestNotLinked(t *testing.T) {
	regMu.Lock()
	savedSrc, savedDrv := sources, drivers
	sources, drivers = map[string]SourceFactory{}, map[string]Driver{}
	regMu.Unlock()
	t.Cleanup(func() {
		regMu.Lock()
		sources, drivers = savedSrc, savedDrv
		regMu.Unlock()
	})
	for _, name := range []string{"etcd", "nacos"} {
		_, err := sourceFactory(name)
		if !errors.Is(err, ErrNotLinked) || !strings.Contains(err.Error(), `"github.com/kmsgo/kmsgo/starter/`+name+`"`) {
			t.Errorf("source %s: %v", name, err)
		}
	}
	for _, name := range []string{"sqlite", "mysql", "postgres"} {
		_, err := driver(name)
		if !errors.Is(err, ErrNotLinked) || !strings.Contains(err.Error(), `"github.com/kmsgo/kmsgo/starter/`+name+`"`) {
			t.Errorf("driver %s: %v", name, err)
		}
	}
	if _, err := driver("oracle"); !errors.Is(err, ErrConfig) {
		t.Errorf("unknown driver: %v", err)
	}
	if _, err := sourceFactory("zookeeper"); !errors.Is(err, ErrConfig) {
		t.Errorf("unknown source: %v", err)
	}
	// Through Start, the error names the component and the config path.
	s := Defaults()
	s.KMS.Endpoint, s.KMS.AccessKeyID, s.KMS.SecretAccessKey = "http://127.0.0.1:1", "AK", "SK"
	s.Database.Driver, s.Database.DSN = "postgres", "postgres://x"
	d, err := openDatabase(t.Context(), s.Database, s.Database.DSN, nil, nil, nil)
	var se *StartError
	if d != nil || !errors.As(err, &se) || se.Component != "database" || se.Path != "database.driver" || !errors.Is(err, ErrNotLinked) {
		t.Errorf("openDatabase: %v", err)
	}
}
