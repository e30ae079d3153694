package server

import (
	"context"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

// Requests are validated as OpenAPI 3.0 for speed (see New): every schema a
// request is checked against must mean the same under 3.0.
func TestRequestSchemasAre30Compatible(t *testing.T) {
	t.Parallel()
	spec, err := LoadSpec()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background() // no IsOpenAPI31OrLater: the 3.0 rules
	seen := map[*openapi3.Schema]bool{}
	for path, item := range spec.Paths.Map() {
		for method, op := range item.Operations() {
			params := append(item.Parameters, op.Parameters...)
			for _, p := range params {
				dropExamples(p.Value.Schema.Value, seen)
				if err := p.Value.Schema.Value.Validate(ctx); err != nil {
					t.Errorf("%s %s parameter %s is not OpenAPI 3.0: %v", method, path, p.Value.Name, err)
				}
			}
			if op.RequestBody == nil {
				continue
			}
			for mt, content := range op.RequestBody.Value.Content {
				dropExamples(content.Schema.Value, seen)
				if err := content.Schema.Value.Validate(ctx); err != nil {
					t.Errorf("%s %s body (%s) is not OpenAPI 3.0: %v", method, path, mt, err)
				}
			}
		}
	}
}

// dropExamples removes the 3.1 `examples` annotation, which validation
// ignores, so that only keywords that constrain values are judged.
func dropExamples(s *openapi3.Schema, seen map[*openapi3.Schema]bool) {
	if s == nil || seen[s] {
		return
	}
	seen[s] = true
	s.Examples = nil
	for _, p := range s.Properties {
		dropExamples(p.Value, seen)
	}
	if s.Items != nil {
		dropExamples(s.Items.Value, seen)
	}
	if s.AdditionalProperties.Schema != nil {
		dropExamples(s.AdditionalProperties.Schema.Value, seen)
	}
	for _, list := range []openapi3.SchemaRefs{s.AllOf, s.AnyOf, s.OneOf} {
		for _, r := range list {
			dropExamples(r.Value, seen)
		}
	}
}
