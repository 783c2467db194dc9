package nacostest

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"time"

	nacosgrpc "github.com/nacos-group/nacos-sdk-go/v2/api/grpc"
	"github.com/nacos-group/nacos-sdk-go/v2/common/remote/rpc/rpc_request"
	"github.com/nacos-group/nacos-sdk-go/v2/common/remote/rpc/rpc_response"
	"github.com/nacos-group/nacos-sdk-go/v2/model"
	"google.golang.org/grpc/peer"
	"google.golang.org/protobuf/types/known/anypb"
)

// Nacos response and error codes the SDK interprets.
const (
	codeSuccess        = 200
	codeFail           = 500
	codeNotFound       = 300 // ConfigQueryResponse.CONFIG_NOT_FOUND
	codeUnregistered   = 301 // constant.UN_REGISTER
	codeNoRight        = 403
	codeBadRequest     = 400
	setupGraceDuration = 3 * time.Second
)

type requestService struct{ s *Server }

type biStreamService struct{ s *Server }

func connID(ctx context.Context) string {
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		return p.Addr.String()
	}
	return ""
}

// toPayload encodes a response as the SDK decodes it: the JSON of the whole
// response struct. (The SDK's own IResponse.GetBody is promoted from the
// embedded *Response and would drop every field of the outer type.)
func toPayload(r rpc_response.IResponse) *nacosgrpc.Payload {
	body, err := json.Marshal(r)
	if err != nil {
		body = []byte(`{"resultCode":500,"errorCode":500,"success":false,"message":"encode"}`)
	}
	return &nacosgrpc.Payload{
		Metadata: &nacosgrpc.Metadata{Type: r.GetResponseType()},
		Body:     &anypb.Any{Value: body},
	}
}

func ok() *rpc_response.Response {
	return &rpc_response.Response{ResultCode: codeSuccess, Success: true}
}

func fail(code int, msg string) *rpc_response.Response {
	return &rpc_response.Response{ResultCode: codeFail, ErrorCode: code, Success: false, Message: msg}
}

func errorPayload(code int, msg string) *nacosgrpc.Payload {
	return toPayload(&rpc_response.ErrorResponse{Response: fail(code, msg)})
}

// Request serves the unary "Request" service.
func (r *requestService) Request(ctx context.Context, p *nacosgrpc.Payload) (*nacosgrpc.Payload, error) {
	s := r.s
	typ := p.GetMetadata().GetType()
	headers := p.GetMetadata().GetHeaders()
	body := p.GetBody().GetValue()
	id := connID(ctx)

	s.mu.Lock()
	s.requests[typ]++
	s.mu.Unlock()

	if typ == "ServerCheckRequest" {
		var req rpc_request.ServerCheckRequest
		req.InternalRequest = rpc_request.NewInternalRequest()
		_ = json.Unmarshal(body, &req)
		resp := &rpc_response.ServerCheckResponse{Response: ok(), ConnectionId: id}
		resp.SetRequestId(req.RequestId)
		return toPayload(resp), nil
	}
	// Every other request must come over a connection that completed
	// ConnectionSetupRequest on its bi-directional stream, as on a real
	// server. The SDK sends the setup and then sleeps 100ms; allow a grace
	// period for a slow machine before answering UN_REGISTER.
	if !s.waitRegistered(ctx, id) {
		return errorPayload(codeUnregistered, errNotRegistered.Error()), nil
	}

	switch typ {
	case "HealthCheckRequest":
		return toPayload(&rpc_response.HealthCheckResponse{Response: ok()}), nil
	case "ConfigQueryRequest":
		req := rpc_request.NewConfigQueryRequest("", "", "")
		if err := json.Unmarshal(body, req); err != nil {
			return toPayload(&rpc_response.ConfigQueryResponse{Response: fail(codeBadRequest, "bad request")}), nil
		}
		if msg := s.authorize(headers, req.Tenant, req.Group); msg != "" {
			return toPayload(&rpc_response.ConfigQueryResponse{Response: fail(codeNoRight, msg)}), nil
		}
		return toPayload(s.query(req)), nil
	case "ConfigPublishRequest":
		req := rpc_request.NewConfigPublishRequest("", "", "", "", "")
		if err := json.Unmarshal(body, req); err != nil || req.DataId == "" || req.Content == "" {
			return toPayload(&rpc_response.ConfigPublishResponse{Response: fail(codeBadRequest, "bad request")}), nil
		}
		if msg := s.authorize(headers, req.Tenant, req.Group); msg != "" {
			return toPayload(&rpc_response.ConfigPublishResponse{Response: fail(codeNoRight, msg)}), nil
		}
		k := configKey{req.Tenant, req.Group, req.DataId}
		if err := s.publish(k, req.Content, req.AdditionMap["encryptedDataKey"], req.CasMd5); err != nil {
			return toPayload(&rpc_response.ConfigPublishResponse{Response: fail(codeFail, err.Error())}), nil
		}
		return toPayload(&rpc_response.ConfigPublishResponse{Response: ok()}), nil
	case "ConfigRemoveRequest":
		req := rpc_request.NewConfigRemoveRequest("", "", "")
		if err := json.Unmarshal(body, req); err != nil {
			return toPayload(&rpc_response.ConfigRemoveResponse{Response: fail(codeBadRequest, "bad request")}), nil
		}
		if msg := s.authorize(headers, req.Tenant, req.Group); msg != "" {
			return toPayload(&rpc_response.ConfigRemoveResponse{Response: fail(codeNoRight, msg)}), nil
		}
		s.remove(configKey{req.Tenant, req.Group, req.DataId})
		return toPayload(&rpc_response.ConfigRemoveResponse{Response: ok()}), nil
	case "ConfigBatchListenRequest":
		req := rpc_request.NewConfigBatchListenRequest(0)
		if err := json.Unmarshal(body, req); err != nil {
			return toPayload(&rpc_response.ConfigChangeBatchListenResponse{Response: fail(codeBadRequest, "bad request")}), nil
		}
		if msg := s.authorize(headers, "", ""); msg != "" {
			return toPayload(&rpc_response.ConfigChangeBatchListenResponse{Response: fail(codeNoRight, msg)}), nil
		}
		return toPayload(s.batchListen(id, req)), nil
	default:
		return errorPayload(codeBadRequest, "nacostest: unsupported request type "+typ), nil
	}
}

// waitRegistered reports whether connection id completed setup, waiting up
// to setupGraceDuration for it.
func (s *Server) waitRegistered(ctx context.Context, id string) bool {
	deadline := time.NewTimer(setupGraceDuration)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		c := s.conns[id]
		s.mu.Unlock()
		if c != nil {
			select {
			case <-c.ready:
				return true
			case <-deadline.C:
				return false
			case <-ctx.Done():
				return false
			}
		}
		select {
		case <-deadline.C:
			return false
		case <-ctx.Done():
			return false
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// authorize checks the token or AK/SK headers the SDK injects; it returns a
// non-empty message when the request must be refused.
func (s *Server) authorize(h map[string]string, tenant, group string) string {
	if s.opts.Username != "" {
		tok := h["accessToken"]
		s.mu.Lock()
		exp, found := s.tokens[tok]
		s.mu.Unlock()
		if tok == "" || !found || time.Now().After(exp) {
			return "user not found or token invalid"
		}
	}
	if s.opts.AccessKey != "" {
		if subtle.ConstantTimeCompare([]byte(h["Spas-AccessKey"]), []byte(s.opts.AccessKey)) != 1 {
			return "signature invalid"
		}
		ts := h["Timestamp"]
		resource := group
		if tenant != "" {
			resource = tenant + "+" + group
		}
		signed := ts
		if resource != "" {
			signed = resource + "+" + ts
		}
		mac := hmac.New(sha1.New, []byte(s.opts.SecretKey))
		mac.Write([]byte(signed))
		want := base64.StdEncoding.EncodeToString(mac.Sum(nil))
		if subtle.ConstantTimeCompare([]byte(h["Spas-Signature"]), []byte(want)) != 1 {
			return "signature invalid"
		}
	}
	return ""
}

func (s *Server) query(req *rpc_request.ConfigQueryRequest) *rpc_response.ConfigQueryResponse {
	s.mu.Lock()
	it, found := s.configs[configKey{req.Tenant, req.Group, req.DataId}]
	s.mu.Unlock()
	if !found {
		return &rpc_response.ConfigQueryResponse{Response: fail(codeNotFound, "config data not exist")}
	}
	return &rpc_response.ConfigQueryResponse{
		Response:         ok(),
		Content:          it.content,
		EncryptedDataKey: it.encryptedDataKey,
		ContentType:      "text",
		Md5:              it.md5,
		LastModified:     it.lastModified,
	}
}

func (s *Server) batchListen(id string, req *rpc_request.ConfigBatchListenRequest) *rpc_response.ConfigChangeBatchListenResponse {
	resp := &rpc_response.ConfigChangeBatchListenResponse{Response: ok(), ChangedConfigs: []model.ConfigContext{}}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.conns[id]
	for _, lc := range req.ConfigListenContexts {
		k := configKey{lc.Tenant, lc.Group, lc.DataId}
		if c != nil {
			if req.Listen {
				c.listens[k] = true
			} else {
				delete(c.listens, k)
			}
		}
		if req.Listen && s.configs[k].md5 != lc.Md5 {
			resp.ChangedConfigs = append(resp.ChangedConfigs, model.ConfigContext{Group: lc.Group, DataId: lc.DataId, Tenant: lc.Tenant})
		}
	}
	return resp
}

// RequestBiStream serves the "BiRequestStream" service: the client's
// connection setup arrives here, and the server pushes change
// notifications through it.
func (b *biStreamService) RequestBiStream(stream nacosgrpc.BiRequestStream_RequestBiStreamServer) error {
	s := b.s
	id := connID(stream.Context())
	c := &conn{id: id, stream: stream, ready: make(chan struct{}), listens: make(map[configKey]bool)}
	s.mu.Lock()
	if !s.running {
		s.mu.Unlock()
		return nil
	}
	s.conns[id] = c
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		if s.conns[id] == c {
			delete(s.conns, id)
		}
		s.mu.Unlock()
		c.sendMu.Lock()
		c.closed = true
		c.sendMu.Unlock()
	}()
	setup := false
	for {
		p, err := stream.Recv()
		if err != nil {
			return nil
		}
		switch p.GetMetadata().GetType() {
		case "ConnectionSetupRequest":
			req := rpc_request.NewConnectionSetupRequest()
			if json.Unmarshal(p.GetBody().GetValue(), req) == nil && !setup {
				setup = true
				close(c.ready)
			}
		default:
			// Acknowledgements of our pushes (NotifySubscriberResponse)
			// and anything else the client sends: nothing to do.
		}
	}
}

// notify pushes a ConfigChangeNotifyRequest to each connection.
func (s *Server) notify(targets []*conn, k configKey) {
	for _, c := range targets {
		req := rpc_request.NewConfigChangeNotifyRequest(k.group, k.dataID, k.tenant)
		req.RequestId = s.newID()
		p := &nacosgrpc.Payload{
			Metadata: &nacosgrpc.Metadata{Type: req.GetRequestType(), Headers: map[string]string{}},
			Body:     &anypb.Any{Value: []byte(req.GetBody(req))},
		}
		c.sendMu.Lock()
		if !c.closed {
			_ = c.stream.Send(p)
		}
		c.sendMu.Unlock()
	}
}
