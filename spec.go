// Package userapi holds the API description that everything else is built
// from. The service serves these bytes at /openapi.yaml, validates requests
// against them, and the generated code in gen/ follows from the same file.
package userapi

import _ "embed"

// OpenAPI is openapi.yaml, byte for byte.
//
//go:embed openapi.yaml
var OpenAPI []byte
