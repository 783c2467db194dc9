package nacos_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/kmsgo/kmsgo/configcenter"
	"github.com/kmsgo/kmsgo/configcenter/nacos"
	"github.com/kmsgo/kmsgo/configcenter/nacos/nacostest"
)

// A Source reads dataIds from Nacos (here the in-process test server) and
// hands them over as stored: the ENC(...) value is still ciphertext.
func Example() {
	srv, err := nacostest.Start(nacostest.Options{})
	if err != nil {
		panic(err)
	}
	defer srv.Stop()
	srv.Publish("dev", "ORDERS", "orders.yaml", "db:\n  password: ENC(AAECAwQ=)\n")

	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)

	src, err := nacos.New(nacos.Config{
		Servers:   []string{srv.Addr()}, // gRPC goes to port+1000
		Namespace: "dev",
		Group:     "ORDERS",
		DataIDs:   []string{"orders.yaml"},
		Dir:       filepath.Join(dir, "nacos"), // SDK cache and log, 0700
	})
	if err != nil {
		panic(err)
	}
	defer src.Close()

	st, err := src.Load(context.Background())
	if err != nil {
		panic(err)
	}
	for _, d := range st.Docs {
		fmt.Printf("%s:\n%s", d.Name, d.Data)
	}
	// Output:
	// orders.yaml:
	// db:
	//   password: ENC(AAECAwQ=)
}

// Watch delivers every later complete state until its context ends.
func ExampleSource_Watch() {
	srv, err := nacostest.Start(nacostest.Options{})
	if err != nil {
		panic(err)
	}
	defer srv.Stop()
	srv.Publish("", nacos.DefaultGroup, "app.properties", "level=info\n")

	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	src, err := nacos.New(nacos.Config{
		Servers: []string{srv.Addr()},
		DataIDs: []string{"app.properties"},
		Dir:     filepath.Join(dir, "nacos"),
	})
	if err != nil {
		panic(err)
	}
	defer src.Close()
	if _, err := src.Load(context.Background()); err != nil {
		panic(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	go func() {
		// Once the SDK has subscribed, an operator changes the value.
		for srv.Listeners("", nacos.DefaultGroup, "app.properties") == 0 {
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(time.Second)
		srv.Publish("", nacos.DefaultGroup, "app.properties", "level=debug\n")
	}()
	_ = src.Watch(ctx, func(st configcenter.State) {
		fmt.Printf("%s", st.Docs[0].Data)
		cancel()
	}, nil)
	// Output:
	// level=debug
}
