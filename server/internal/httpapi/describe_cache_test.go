package httpapi_test

import (
	"github.com/kmsgo/kmsgo/starter/kmsapi"
	"testing"
	"time"

	"github.com/kmsgo/kmsgo/hsm/devhsm"
	"github.com/kmsgo/kmsgo/server/config"
	"github.com/kmsgo/kmsgo/server/dbtest"
	"github.com/kmsgo/kmsgo/server/kmstest"
	"gorm.io/gorm"
)

// TestDescribeKeyCacheFollowsChanges: DescribeKey answers are cached, but a
// change made through the same replica shows at once, whatever the change.
func TestDescribeKeyCacheFollowsChanges(t *testing.T) {
	srv := kmstest.Start(t)
	id := createKey(t, srv, nil)
	describe := func() kmsapi.KeyMetadata {
		t.Helper()
		var md kmsapi.KeyMetadata
		call(t, srv, "GET", "/v1/keys/"+id, nil, 200, &md)
		return md
	}
	if md := describe(); md.KeyState != "Enabled" || md.PrimaryVersion != 1 { // now cached
		t.Fatalf("new key %+v", md)
	}
	for _, tc := range []struct {
		name         string
		method, path string
		body         any
		want         int
		check        func(md kmsapi.KeyMetadata) bool
	}{
		{"tag", "POST", "/v1/keys/" + id + "/tags", map[string]any{"tags": map[string]string{"team": "pay"}}, 200,
			func(md kmsapi.KeyMetadata) bool { return md.Tags["team"] == "pay" }},
		{"description", "PATCH", "/v1/keys/" + id, map[string]any{"description": "orders"}, 200,
			func(md kmsapi.KeyMetadata) bool { return md.Description == "orders" }},
		{"rotate", "POST", "/v1/keys/" + id + "/rotate", nil, 200,
			func(md kmsapi.KeyMetadata) bool { return md.PrimaryVersion == 2 }},
		{"alias", "POST", "/v1/aliases", map[string]any{"alias_name": "alias/cache-test", "key_id": id}, 201,
			func(md kmsapi.KeyMetadata) bool { return len(md.Aliases) == 1 && md.Aliases[0] == "alias/cache-test" }},
		{"disable", "POST", "/v1/keys/" + id + "/disable", nil, 200,
			func(md kmsapi.KeyMetadata) bool { return md.KeyState == "Disabled" }},
		{"enable", "POST", "/v1/keys/" + id + "/enable", nil, 200,
			func(md kmsapi.KeyMetadata) bool { return md.KeyState == "Enabled" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			describe() // cache the current answer
			call(t, srv, tc.method, tc.path, tc.body, tc.want, nil)
			if md := describe(); !tc.check(md) {
				t.Fatalf("after %s: stale %+v", tc.name, md)
			}
		})
	}
	// The cached answer is a copy: mutating one caller's result cannot leak.
	a, b := describe(), describe()
	if len(a.Tags) == 0 {
		t.Fatal("no tags")
	}
	a.Tags["team"] = "mutated"
	if b.Tags["team"] != "pay" || describe().Tags["team"] != "pay" {
		t.Fatal("cached metadata shared between answers")
	}
}

// TestDescribeKeyCacheBoundAcrossReplicas: a change on replica A shows in
// replica B's DescribeKey within the metadata TTL.
func TestDescribeKeyCacheBoundAcrossReplicas(t *testing.T) {
	const bound = 300 * time.Millisecond
	dbtest.ForEach(t, func(t *testing.T, db *gorm.DB) {
		dir := t.TempDir()
		backend, err := devhsm.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { backend.Close() })
		replica := func(name string) *kmstest.Server {
			return kmstest.Start(t, kmstest.WithDB(db), kmstest.WithHSM(backend), kmstest.WithDataDir(dir),
				kmstest.WithConfig(func(c *config.Config) {
					c.ReplicaID = name
					c.KMS.MetadataTTL = bound
				}))
		}
		a, b := replica("replica-a"), replica("replica-b")
		id := createKey(t, a, nil)
		var md kmsapi.KeyMetadata
		call(t, b, "GET", "/v1/keys/"+id, nil, 200, &md) // B caches it
		call(t, a, "POST", "/v1/keys/"+id+"/disable", nil, 200, nil)
		disabled := time.Now()
		for {
			sent := time.Now()
			call(t, b, "GET", "/v1/keys/"+id, nil, 200, &md)
			if md.KeyState == "Disabled" {
				break
			}
			if late := sent.Sub(disabled); late > bound+100*time.Millisecond {
				t.Fatalf("replica B still describes the key as %s %v after it was disabled (bound %v)", md.KeyState, late, bound)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}
