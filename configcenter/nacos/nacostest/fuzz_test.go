package nacostest

import (
	"context"
	"testing"
	"time"

	nacosgrpc "github.com/nacos-group/nacos-sdk-go/v2/api/grpc"
	"google.golang.org/protobuf/types/known/anypb"
)

// FuzzRequest feeds arbitrary request types, bodies and headers to the
// unary handler: it must always answer with a payload the SDK can decode
// (a response type and a JSON body), never panic or return a gRPC error.
func FuzzRequest(f *testing.F) {
	for _, seed := range []struct{ typ, body string }{
		{"ServerCheckRequest", `{"requestId":"1","module":"internal"}`},
		{"HealthCheckRequest", `{}`},
		{"ConfigQueryRequest", `{"group":"G","dataId":"a.yaml","tenant":"ns","module":"config"}`},
		{"ConfigPublishRequest", `{"group":"G","dataId":"a.yaml","tenant":"ns","content":"a: 1","casMd5":"","additionMap":{"encryptedDataKey":"k"}}`},
		{"ConfigRemoveRequest", `{"group":"G","dataId":"a.yaml"}`},
		{"ConfigBatchListenRequest", `{"listen":true,"configListenContexts":[{"group":"G","md5":"x","dataId":"a.yaml","tenant":""}]}`},
		{"ConfigBatchListenRequest", `{"listen":false,"configListenContexts":null}`},
		{"InstanceRequest", `{}`},
		{"ConfigQueryRequest", `not json`},
	} {
		f.Add(seed.typ, []byte(seed.body), "")
	}
	s := &Server{opts: Options{}, configs: map[configKey]configItem{}, conns: map[string]*conn{}, tokens: map[string]time.Time{}, requests: map[string]int{}}
	// A connection that completed setup, under the id a context without a
	// peer gets.
	ready := make(chan struct{})
	close(ready)
	s.conns[""] = &conn{ready: ready, listens: map[configKey]bool{}, closed: true}
	svc := &requestService{s: s}
	f.Fuzz(func(t *testing.T, typ string, body []byte, token string) {
		p := &nacosgrpc.Payload{
			Metadata: &nacosgrpc.Metadata{Type: typ, Headers: map[string]string{"accessToken": token}},
			Body:     &anypb.Any{Value: body},
		}
		out, err := svc.Request(context.Background(), p)
		if err != nil {
			t.Fatalf("Request returned a gRPC error: %v", err)
		}
		if out.GetMetadata().GetType() == "" || len(out.GetBody().GetValue()) == 0 {
			t.Fatalf("empty response to %q", typ)
		}
	})
}
