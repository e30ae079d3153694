package server

import (
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"userapi/gen"
)

// Real kin-openapi errors, made by validating real requests against
// openapi.yaml, become these exact answers. The messages are rebuilt partly
// from kin-openapi's wording of its reasons: when an upgrade rewords one,
// this test names the case that changed.
func TestFieldErrors_FromKinOpenAPI(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, op, target, contentType, body string
		status                              int
		detail                              string
		fields                              []gen.FieldError
	}{
		{"UnknownField", "createUser", "/users", "application/json", `{"name":"A","email":"a@example.com","nickname":"x"}`,
			422, "body.nickname is not a known field", []gen.FieldError{{Location: "body.nickname", Message: "is not a known field"}}},
		{"MissingField", "createUser", "/users", "application/json", `{"name":"A"}`,
			422, "body.email is required", []gen.FieldError{{Location: "body.email", Message: "is required"}}},
		{"WrongType", "createUser", "/users", "application/json", `{"name":1,"email":"a@example.com"}`,
			422, "body.name must be a string", []gen.FieldError{{Location: "body.name", Message: "must be a string"}}},
		{"SeveralFields", "createUser", "/users", "application/json", `{"name":"","email":"nope","x":1}`,
			422, "the request has 3 invalid fields", []gen.FieldError{
				{Location: "body.email", Message: "must be a valid email address"},
				{Location: "body.name", Message: "must be at least 1 character"},
				{Location: "body.x", Message: "is not a known field"},
			}},
		{"NoBody", "createUser", "/users", "application/json", ``,
			422, "body a JSON body is required", []gen.FieldError{{Location: "body", Message: "a JSON body is required"}}},
		{"WrongContentType", "createUser", "/users", "text/plain", `{"name":"A","email":"a@example.com"}`,
			415, "the body must be application/json, not text/plain", nil},
		{"NoContentType", "createUser", "/users", "", `{"name":"A","email":"a@example.com"}`,
			415, "the body must be application/json, and the Content-Type header is missing", nil},
		{"UndecodableBody", "createUser", "/users", "application/json", `{"name":`,
			400, "the body is not valid JSON", nil},
		{"QueryNotAnInteger", "listUsers", "/users?limit=many", "", ``,
			422, "query.limit must be an integer", []gen.FieldError{{Location: "query.limit", Message: "must be an integer"}}},
		{"TooLongPlural", "createUser", "/users", "application/json", `{"name":"` + strings.Repeat("a", 101) + `","email":"a@example.com"}`,
			422, "body.name must be at most 100 characters", []gen.FieldError{{Location: "body.name", Message: "must be at most 100 characters"}}},
		{"TooFewItems", "batchGetUsers", "/users/batch-get", "application/json", `{"ids":[]}`,
			422, "body.ids must have at least 1 item", []gen.FieldError{{Location: "body.ids", Message: "must have at least 1 item"}}},
		{"QueryTooLarge", "listUsers", "/users?limit=5000", "", ``,
			422, "query.limit must be at most 1000", []gen.FieldError{{Location: "query.limit", Message: "must be at most 1000"}}},
	}
	ops := mustOperations(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := validate(t, ops[tt.op], tt.target, tt.contentType, tt.body)
			if err == nil {
				t.Fatal("the request passed validation")
			}
			p := requestProblem(err)
			if p == nil {
				t.Fatalf("requestProblem(%v) = nil, want a problem", err)
			}
			var fields []gen.FieldError
			if p.Errors != nil {
				fields = *p.Errors
			}
			if p.Status != tt.status || p.Detail != tt.detail || !reflect.DeepEqual(fields, tt.fields) {
				t.Errorf("got %d %q %v\nwant %d %q %v", p.Status, p.Detail, fields, tt.status, tt.detail, tt.fields)
			}
		})
	}
}

func mustOperations(t *testing.T) map[string]operation {
	t.Helper()
	spec, err := LoadSpec()
	if err != nil {
		t.Fatal(err)
	}
	list, err := operations(spec)
	if err != nil {
		t.Fatal(err)
	}
	ops := map[string]operation{}
	for _, op := range list {
		ops[op.id] = op
	}
	return ops
}

// validate runs the validator the server uses on one request to op and
// returns what it refused the request with.
func validate(t *testing.T, op operation, target, contentType, body string) error {
	t.Helper()
	var r *http.Request
	if body == "" {
		r = httptest.NewRequest(op.method, target, nil)
	} else {
		r = httptest.NewRequest(op.method, target, strings.NewReader(body))
	}
	if contentType != "" {
		r.Header.Set(echo.HeaderContentType, contentType)
	}
	e := echo.New()
	c := e.NewContext(r, httptest.NewRecorder())
	c.SetPath(op.echoPath())
	return newValidator(newJSONShape(0, 0)).forOperation(op)(func(echo.Context) error { return nil })(c)
}
