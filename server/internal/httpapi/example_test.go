package httpapi_test

import (
	"fmt"

	"github.com/kmsgo/kmsgo/server/internal/httpapi"
)

// OpenAPIPath converts gin route syntax into OpenAPI path templates.
func ExampleOpenAPIPath() {
	fmt.Println(httpapi.OpenAPIPath("/v1/keys/:id/rotation-policy"))
	// Output: /v1/keys/{id}/rotation-policy
}
