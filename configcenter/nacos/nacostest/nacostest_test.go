package nacostest_test

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nacos-group/nacos-sdk-go/v2/clients"
	"github.com/nacos-group/nacos-sdk-go/v2/clients/config_client"
	"github.com/nacos-group/nacos-sdk-go/v2/common/constant"
	"github.com/nacos-group/nacos-sdk-go/v2/vo"

	"github.com/kmsgo/kmsgo/configcenter/nacos/nacostest"
)

const waitFor = 30 * time.Second

// newClient builds the real SDK config client pointed at srv.
func newClient(t *testing.T, srv *nacostest.Server, mutate func(*constant.ClientConfig)) config_client.IConfigClient {
	t.Helper()
	dir := sdkDir(t)
	cc := constant.ClientConfig{
		NamespaceId:         "ns1",
		TimeoutMs:           5000,
		CacheDir:            dir + "/cache",
		LogDir:              dir + "/log",
		LogLevel:            "error",
		DisableUseSnapShot:  true,
		NotLoadCacheAtStart: true,
	}
	if mutate != nil {
		mutate(&cc)
	}
	c, err := clients.NewConfigClient(vo.NacosClientParam{
		ClientConfig:  &cc,
		ServerConfigs: []constant.ServerConfig{{IpAddr: srv.Host(), Port: uint64(srv.HTTPPort())}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseClient)
	return c
}

// sdkDir is a temporary directory for the SDK's cache and logs. Unlike
// t.TempDir its removal tolerates the SDK finishing a cache write in the
// background just after CloseClient.
func sdkDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "nacostest-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for range 50 {
			if os.RemoveAll(dir) == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	return dir
}

// eventually polls cond until it holds or the generous deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// subscribed waits until the client has subscribed to app.yaml, then lets
// it finish handling the batch-listen answer: nacos-sdk-go v2.3.2 drops a
// push that arrives before that (executeConfigListen marks the key as in
// sync after the push handler marked it stale), and then only its 5-minute
// full sync would deliver the change.
func subscribed(t *testing.T, srv *nacostest.Server) {
	t.Helper()
	eventually(t, "subscription", func() bool { return srv.Listeners("ns1", "G", "app.yaml") == 1 })
	time.Sleep(time.Second)
}

// publishUntilPushed publishes prefix+".0", ".1", ... to app.yaml until the
// listener sees one. Only a push (or the SDK's 5-minute full sync, far
// beyond these tests) can deliver it; a new attempt is made only when the
// SDK's lost-push race (see subscribed) swallowed the previous push.
func publishUntilPushed(t *testing.T, srv *nacostest.Server, rec *recorder, prefix string) {
	t.Helper()
	for i := range 3 {
		v := fmt.Sprintf("%s.%d\n", prefix, i)
		srv.Publish("ns1", "G", "app.yaml", v)
		deadline := time.Now().Add(waitFor / 3)
		for time.Now().Before(deadline) {
			if rec.has(v) {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	t.Fatalf("no change notification for %s", prefix)
}

type recorder struct {
	mu   sync.Mutex
	seen []string
}

func (r *recorder) on(_, _, _, data string) {
	r.mu.Lock()
	r.seen = append(r.seen, data)
	r.mu.Unlock()
}

func (r *recorder) has(v string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.seen {
		if s == v {
			return true
		}
	}
	return false
}

func TestPortsFollowSDKOffset(t *testing.T) {
	srv := nacostest.StartT(t, nacostest.Options{})
	if srv.GRPCPort() != srv.HTTPPort()+1000 {
		t.Fatalf("grpc port %d, http port %d", srv.GRPCPort(), srv.HTTPPort())
	}
}

func TestGetPublishListenWithRealClient(t *testing.T) {
	srv := nacostest.StartT(t, nacostest.Options{})
	srv.Publish("ns1", "G", "app.yaml", "a: 1\n")
	c := newClient(t, srv, nil)

	got, err := c.GetConfig(vo.ConfigParam{DataId: "app.yaml", Group: "G"})
	if err != nil || got != "a: 1\n" {
		t.Fatalf("GetConfig = %q, %v", got, err)
	}
	// A missing config is empty content, as with a real server.
	if got, err := c.GetConfig(vo.ConfigParam{DataId: "missing.yaml", Group: "G"}); err != nil || got != "" {
		t.Fatalf("missing GetConfig = %q, %v", got, err)
	}

	var rec recorder
	if err := c.ListenConfig(vo.ConfigParam{DataId: "app.yaml", Group: "G", OnChange: rec.on}); err != nil {
		t.Fatal(err)
	}
	subscribed(t, srv)
	publishUntilPushed(t, srv, &rec, "a: 2")

	// Publish and delete through the client land in the server.
	if ok, err := c.PublishConfig(vo.ConfigParam{DataId: "other.json", Group: "G", Content: `{"x":1}`}); !ok || err != nil {
		t.Fatalf("PublishConfig = %v, %v", ok, err)
	}
	if v, ok := srv.Get("ns1", "G", "other.json"); !ok || v != `{"x":1}` {
		t.Fatalf("server has %q %v", v, ok)
	}
	if ok, err := c.DeleteConfig(vo.ConfigParam{DataId: "other.json", Group: "G"}); !ok || err != nil {
		t.Fatalf("DeleteConfig = %v, %v", ok, err)
	}
	if _, ok := srv.Get("ns1", "G", "other.json"); ok {
		t.Fatal("config still present after DeleteConfig")
	}
	if srv.Requests("ConfigBatchListenRequest") == 0 || srv.Requests("ServerCheckRequest") == 0 {
		t.Fatal("expected server check and batch listen requests")
	}
}

func TestRestartResubscribes(t *testing.T) {
	if inChildWithoutRace(t) {
		return
	}
	srv := nacostest.StartT(t, nacostest.Options{})
	srv.Publish("ns1", "G", "app.yaml", "v: 1\n")
	c := newClient(t, srv, nil)
	if _, err := c.GetConfig(vo.ConfigParam{DataId: "app.yaml", Group: "G"}); err != nil {
		t.Fatal(err)
	}
	var rec recorder
	if err := c.ListenConfig(vo.ConfigParam{DataId: "app.yaml", Group: "G", OnChange: rec.on}); err != nil {
		t.Fatal(err)
	}
	subscribed(t, srv)
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	if n := srv.Listeners("ns1", "G", "app.yaml"); n != 0 {
		t.Fatalf("listeners survived restart: %d", n)
	}
	subscribed(t, srv) // the re-subscription after the restart
	publishUntilPushed(t, srv, &rec, "v: 2")
}

func TestUsernamePasswordAuth(t *testing.T) {
	srv := nacostest.StartT(t, nacostest.Options{Username: "nacos", Password: "s3cret"})
	srv.Publish("ns1", "G", "app.yaml", "a: 1\n")

	good := newClient(t, srv, func(cc *constant.ClientConfig) { cc.Username, cc.Password = "nacos", "s3cret" })
	if got, err := good.GetConfig(vo.ConfigParam{DataId: "app.yaml", Group: "G"}); err != nil || got != "a: 1\n" {
		t.Fatalf("GetConfig with login = %q, %v", got, err)
	}
	if srv.Logins() == 0 {
		t.Fatal("no login happened")
	}
	bad := newClient(t, srv, func(cc *constant.ClientConfig) { cc.Username, cc.Password = "nacos", "wrong" })
	if got, err := bad.GetConfig(vo.ConfigParam{DataId: "app.yaml", Group: "G"}); err == nil || got == "a: 1\n" {
		t.Fatalf("GetConfig with a wrong password = %q, %v; want an error", got, err)
	}
}

func TestAccessKeyAuth(t *testing.T) {
	srv := nacostest.StartT(t, nacostest.Options{AccessKey: "AK1", SecretKey: "SK1"})
	srv.Publish("ns1", "G", "app.yaml", "a: 1\n")
	good := newClient(t, srv, func(cc *constant.ClientConfig) { cc.AccessKey, cc.SecretKey = "AK1", "SK1" })
	if got, err := good.GetConfig(vo.ConfigParam{DataId: "app.yaml", Group: "G"}); err != nil || got != "a: 1\n" {
		t.Fatalf("GetConfig with AK/SK = %q, %v", got, err)
	}
	bad := newClient(t, srv, func(cc *constant.ClientConfig) { cc.AccessKey, cc.SecretKey = "AK1", "nope" })
	_, err := bad.GetConfig(vo.ConfigParam{DataId: "app.yaml", Group: "G"})
	if err == nil || !strings.Contains(err.Error(), "signature") {
		t.Fatalf("GetConfig with a wrong secret: %v; want a signature error", err)
	}
}
