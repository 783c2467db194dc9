// Package nacostest is an in-process Nacos 2.x test server, in the spirit
// of miniredis, for tests of code that uses the real
// github.com/nacos-group/nacos-sdk-go/v2 config client.
//
// It is a named test double and exists only because a real Nacos server (a
// Java program) cannot run in this project's test environment. It speaks the
// Nacos 2.x gRPC protocol exactly as the SDK expects, because it reuses the
// SDK's own generated gRPC service definitions (api/grpc) and its request and
// response types (common/remote/rpc/rpc_request, rpc_response): the unary
// "Request" service carries ServerCheckRequest, HealthCheckRequest,
// ConfigQueryRequest, ConfigPublishRequest, ConfigRemoveRequest and
// ConfigBatchListenRequest; the "BiRequestStream" service carries the
// client's ConnectionSetupRequest and the server's ConfigChangeNotifyRequest
// pushes. Over HTTP it serves the login endpoint the SDK calls for
// username/password auth (POST /nacos/v1/auth/users/login).
//
// Like the SDK, it assumes the gRPC port is the HTTP port + 1000: Start picks
// a free pair of ports on 127.0.0.1 that satisfies that. Restart stops the
// server (dropping every connection) and starts it again on the same ports
// with the same data, so tests can check that clients reconnect and
// re-subscribe. Only the config half of Nacos is implemented; naming
// (service discovery) requests are answered with an error.
package nacostest
