package server

import (
	"strings"
	"testing"

	"userapi"
)

// The spec's two lists of problem types must agree, and each entry must say
// everything its page shows; the code's types must be listed with the
// statuses the code gives them.
func TestParseProblemTypes(t *testing.T) {
	spec := string(userapi.OpenAPI)
	if _, err := parseProblemTypes([]byte(spec)); err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	if err := checkProblemTypes(); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, old, new, want string }{
		{"EnumLacksOne", "            - /problems/email-taken\n", "", "differ"},
		{"ListLacksOne", "            - kind: email-taken\n", "            - kind: email-taken-elsewhere\n", "differ"},
		{"NoAdvice", "              todo: 'Wait `Retry-After` seconds. Budgets", "              nothing: 'Wait `Retry-After` seconds. Budgets", "needs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(spec, tt.old) {
				t.Fatalf("openapi.yaml no longer contains %q", tt.old)
			}
			_, err := parseProblemTypes([]byte(strings.Replace(spec, tt.old, tt.new, 1)))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("parseProblemTypes = %v, want an error saying %q", err, tt.want)
			}
		})
	}
}
