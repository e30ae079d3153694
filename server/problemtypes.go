package server

import (
	"context"
	"fmt"
	"html/template"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"

	"sigs.k8s.io/yaml"

	"userapi"
	"userapi/gen"
)

// problemType is one entry of x-problem-types in openapi.yaml: the kinds of
// problem the service answers with, each with its title and its page.
type problemType struct {
	Kind   string `json:"kind"`
	Status int    `json:"status"`
	Title  string `json:"title"`
	Means  string `json:"means"`
	Todo   string `json:"todo"`
}

func (t problemType) uri() gen.ProblemType { return gen.ProblemType("/problems/" + t.Kind) }

// problemTypes reads x-problem-types from the embedded spec once. The spec is
// compiled in, so a mistake there shows in every test and at start-up
// (checkProblemTypes), never first in an answer.
var problemTypes = sync.OnceValues(func() (map[gen.ProblemType]problemType, error) {
	return parseProblemTypes(userapi.OpenAPI)
})

// parseProblemTypes reads x-problem-types from an OpenAPI document and checks
// it against the Problem type enum.
func parseProblemTypes(spec []byte) (map[gen.ProblemType]problemType, error) {
	var doc struct {
		Components struct {
			Schemas struct {
				Problem struct {
					Properties struct {
						Type struct {
							Enum  []gen.ProblemType `json:"enum"`
							Types []problemType     `json:"x-problem-types"`
						} `json:"type"`
					} `json:"properties"`
				} `json:"Problem"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := yaml.Unmarshal(spec, &doc); err != nil {
		return nil, fmt.Errorf("openapi.yaml: %w", err)
	}
	listing := doc.Components.Schemas.Problem.Properties.Type
	out := make(map[gen.ProblemType]problemType, len(listing.Types))
	listed := []gen.ProblemType{gen.AboutBlank}
	for _, t := range listing.Types {
		if t.Title == "" || t.Means == "" || t.Todo == "" || http.StatusText(t.Status) == "" {
			return nil, fmt.Errorf("openapi.yaml, x-problem-types: %q needs a status, a title, means and todo", t.Kind)
		}
		out[t.uri()] = t
		listed = append(listed, t.uri())
	}
	slices.Sort(listed)
	enum := slices.Sorted(slices.Values(listing.Enum))
	if !slices.Equal(listed, enum) {
		return nil, fmt.Errorf("openapi.yaml: the Problem type enum %v and x-problem-types (with about:blank) %v differ", enum, listed)
	}
	return out, nil
}

// kindOfStatus is the problem type of an answer with this status that
// nothing more specific describes; other statuses are about:blank.
var kindOfStatus = map[int]gen.ProblemType{
	http.StatusBadRequest:            gen.ProblemsmalformedRequest,
	http.StatusUnauthorized:          gen.Problemsunauthorized,
	http.StatusForbidden:             gen.Problemsforbidden,
	http.StatusNotFound:              gen.ProblemsnotFound,
	http.StatusMethodNotAllowed:      gen.ProblemsmethodNotAllowed,
	http.StatusConflict:              gen.Problemsconflict,
	http.StatusPreconditionFailed:    gen.ProblemspreconditionFailed,
	http.StatusGone:                  gen.ProblemseventsTrimmed,
	http.StatusRequestEntityTooLarge: gen.ProblemsbodyTooLarge,
	http.StatusUnsupportedMediaType:  gen.ProblemsunsupportedMediaType,
	http.StatusUnprocessableEntity:   gen.Problemsvalidation,
	http.StatusTooManyRequests:       gen.ProblemsrateLimited,
	http.StatusInternalServerError:   gen.ProblemsinternalError,
	http.StatusServiceUnavailable:    gen.Problemsunavailable,
}

// checkProblemTypes refuses to start when the spec's list of problem types
// and the ones the code uses disagree: each generated type must be listed,
// with the status the code gives it.
func checkProblemTypes() error {
	types, err := problemTypes()
	if err != nil {
		return err
	}
	for status, kind := range kindOfStatus {
		if t, ok := types[kind]; !ok || t.Status != status {
			return fmt.Errorf("openapi.yaml, x-problem-types: %s must be listed with status %d", kind, status)
		}
	}
	return nil
}

// typed gives p the problem type kind, with its title from the spec.
func (p *problem) typed(kind gen.ProblemType) *problem {
	types, _ := problemTypes()
	t, ok := types[kind]
	if !ok || t.Status != p.Status {
		// A kind the spec does not list for this status would break the
		// contract; checkProblemTypes and the tests keep this from happening.
		p.Type, p.Title = gen.AboutBlank, http.StatusText(p.Status)
		return p
	}
	p.Type, p.Title = kind, t.Title
	return p
}

// GetProblemType serves the page that a problem's type names.
func (h *Handler) GetProblemType(_ context.Context, req gen.GetProblemTypeRequestObject) (gen.GetProblemTypeResponseObject, error) {
	types, err := problemTypes()
	if err != nil {
		return nil, err
	}
	t, ok := types[gen.ProblemType("/problems/"+req.Kind)]
	if !ok {
		return nil, newProblem(http.StatusNotFound, fmt.Sprintf("there is no problem type %.40q; the Problem schema of /openapi.json lists them", req.Kind))
	}
	var b strings.Builder
	if err := problemPage.Execute(&b, t); err != nil {
		return nil, err
	}
	return gen.GetProblemType200TexthtmlResponse{Body: strings.NewReader(b.String()), ContentLength: int64(b.Len())}, nil
}

// code renders the spec's `backticks` as <code>, after escaping the text.
var backticks = regexp.MustCompile("`([^`]*)`")

func code(s string) template.HTML {
	return template.HTML(backticks.ReplaceAllString(template.HTMLEscapeString(s), "<code>$1</code>")) //nolint:gosec // escaped above
}

var problemPage = template.Must(template.New("problem").Funcs(template.FuncMap{"code": code}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{{.Title}}: userapi problem type</title>
  <style>body { font-family: system-ui, sans-serif; max-width: 40em; margin: 2em auto; padding: 0 1em; line-height: 1.5 } code { background: #f3f3f3; padding: 0 .2em }</style>
</head>
<body>
  <h1>{{.Title}}</h1>
  <p><code>type: /problems/{{.Kind}}</code>, HTTP status {{.Status}}</p>
  <h2>What it means</h2>
  <p>{{code .Means}}</p>
  <h2>What to do</h2>
  <p>{{code .Todo}}</p>
  <p><code>detail</code> says what went wrong with the request at hand, and <code>request_id</code> identifies it in the service's logs.
  All the types: the <code>Problem</code> schema in the <a href="/redoc">reference</a>.</p>
</body>
</html>
`))
