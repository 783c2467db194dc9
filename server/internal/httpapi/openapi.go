package httpapi

import (
	"encoding/json"
	"net/http"
	"reflect"
	"regexp"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/kmsgo/kmsgo/starter/kmsapi"
)

// RouteInfo describes one documented route.
type RouteInfo struct {
	Method string
	Path   string // gin syntax
	Action string // policy action, "" for public routes
	Public bool
}

// Routes returns the documented route table (the source of both the gin
// registration and /openapi.json).
func (s *Server) Routes() []RouteInfo {
	out := make([]RouteInfo, len(s.routes))
	for i, r := range s.routes {
		out[i] = RouteInfo{Method: r.Method, Path: r.Path, Action: r.Action, Public: r.Public}
	}
	return out
}

var ginParam = regexp.MustCompile(`:([A-Za-z_]+)`)

// OpenAPIPath converts a gin path (/v1/keys/:id) to OpenAPI syntax (/v1/keys/{id}).
func OpenAPIPath(p string) string { return ginParam.ReplaceAllString(p, "{$1}") }

// OpenAPI returns the OpenAPI 3.0 document of the API, generated from the
// route table and the request/response types.
func (s *Server) OpenAPI() map[string]any {
	paths := map[string]any{}
	for _, r := range s.routes {
		p := OpenAPIPath(r.Path)
		item, _ := paths[p].(map[string]any)
		if item == nil {
			item = map[string]any{}
			paths[p] = item
		}
		op := map[string]any{
			"summary":     r.Summary,
			"operationId": operationID(r),
		}
		if r.extra != nil {
			item[strings.ToLower(r.Method)] = extraOperation(op, r.extra)
			continue
		}
		var params []any
		for _, m := range ginParam.FindAllStringSubmatch(r.Path, -1) {
			params = append(params, map[string]any{"name": m[1], "in": "path", "required": true, "schema": map[string]any{"type": "string"}})
		}
		for _, q := range r.Query {
			params = append(params, map[string]any{"name": q, "in": "query", "required": false, "schema": map[string]any{"type": "string"}})
		}
		if params != nil {
			op["parameters"] = params
		}
		if r.Request != nil {
			op["requestBody"] = map[string]any{"required": false, "content": map[string]any{
				"application/json": map[string]any{"schema": schemaOf(reflect.TypeOf(r.Request))}}}
		}
		resp := map[string]any{"description": http.StatusText(r.Status)}
		switch {
		case r.Reply != nil:
			resp["content"] = map[string]any{"application/json": map[string]any{"schema": schemaOf(reflect.TypeOf(r.Reply))}}
		case r.Path == "/metrics":
			resp["content"] = map[string]any{"text/plain": map[string]any{"schema": map[string]any{"type": "string"}}}
		case r.Path == "/openapi.json":
			resp["content"] = map[string]any{"application/json": map[string]any{"schema": map[string]any{"type": "object"}}}
		}
		responses := map[string]any{itoa(r.Status): resp,
			"default": map[string]any{"description": "Error", "content": map[string]any{
				"application/json": map[string]any{"schema": map[string]any{"$ref": "#/components/schemas/Error"}}}}}
		op["responses"] = responses
		if r.Public {
			op["security"] = []any{}
		} else {
			op["x-kms-action"] = r.Action
		}
		item[strings.ToLower(r.Method)] = op
	}
	return map[string]any{
		"openapi": "3.0.3",
		"info": map[string]any{"title": "kmsd API", "version": "v1",
			"description": "kmsgo key management service. Every /v1 route requires AWS SigV4 (service kms). See server/internal/httpapi/API.md."},
		"paths":    paths,
		"security": []any{map[string]any{"sigv4": []any{}}},
		"components": map[string]any{
			"securitySchemes": map[string]any{"sigv4": map[string]any{"type": "apiKey", "in": "header", "name": "Authorization",
				"description": "AWS Signature Version 4, service kms"}},
			"schemas": map[string]any{"Error": schemaOf(reflect.TypeOf(kmsapi.ErrorResponse{}))},
		},
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// extraOperation completes the OpenAPI operation of an Extra route: its
// bodies and error answers are in its own protocol, and it names its
// policy actions per request.
func extraOperation(op map[string]any, x *Route) map[string]any {
	ct := x.ContentType
	if ct == "" {
		ct = "application/json"
	}
	content := map[string]any{ct: map[string]any{"schema": map[string]any{"type": "object"}}}
	op["requestBody"] = map[string]any{"required": false, "content": content}
	op["responses"] = map[string]any{
		"200":     map[string]any{"description": http.StatusText(http.StatusOK), "content": content},
		"default": map[string]any{"description": "Error, in the protocol of the route", "content": content},
	}
	return op
}

func operationID(r route) string {
	if r.extra != nil && r.extra.OperationID != "" {
		return r.extra.OperationID
	}
	if r.Action != "" || r.extra != nil {
		return strings.ToLower(r.Method) + "_" + strings.NewReplacer("/", "_", ":", "", "-", "_").Replace(strings.TrimPrefix(r.Path, "/"))
	}
	return strings.TrimSuffix(strings.TrimPrefix(r.Path, "/"), ".json")
}

var (
	timeType = reflect.TypeOf(time.Time{})
	rawType  = reflect.TypeOf(json.RawMessage{})
)

// schemaOf derives a JSON schema from a Go type and its json tags.
func schemaOf(t reflect.Type) map[string]any {
	nullable := false
	for t.Kind() == reflect.Pointer {
		t, nullable = t.Elem(), true
	}
	var s map[string]any
	switch {
	case t == timeType:
		s = map[string]any{"type": "string", "format": "date-time"}
	case t == rawType:
		s = map[string]any{"type": "object"}
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8:
		s = map[string]any{"type": "string", "format": "byte"}
	case t.Kind() == reflect.Slice:
		s = map[string]any{"type": "array", "items": schemaOf(t.Elem())}
	case t.Kind() == reflect.Map:
		s = map[string]any{"type": "object", "additionalProperties": schemaOf(t.Elem())}
	case t.Kind() == reflect.String:
		s = map[string]any{"type": "string"}
	case t.Kind() == reflect.Bool:
		s = map[string]any{"type": "boolean"}
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64:
		s = map[string]any{"type": "integer"}
	case t.Kind() == reflect.Struct:
		props := map[string]any{}
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			tag := f.Tag.Get("json")
			name, _, _ := strings.Cut(tag, ",")
			if !f.IsExported() || name == "-" || tag == "" {
				continue
			}
			props[name] = schemaOf(f.Type)
		}
		s = map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	default:
		s = map[string]any{}
	}
	if nullable {
		s["nullable"] = true
	}
	return s
}

func (s *Server) openapiHandler(c *gin.Context) {
	c.JSON(http.StatusOK, s.OpenAPI())
}
