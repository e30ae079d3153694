package server

import (
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

// The record of an operation follows from what the spec says, and a spec
// that leaves a decision open is refused.
func TestOperations_Records(t *testing.T) {
	t.Parallel()
	const head = "openapi: 3.0.3\ninfo: {title: t, version: \"1\"}\npaths:\n  /things:\n"
	const resp = "      responses: {\"200\": {description: ok}}\n"
	tests := []struct {
		name, op string
		want     operation
		err      string
	}{
		{"GetSpendsReads", "    get:\n      operationId: a\n      security: [{k: []}]\n      x-scope: users:read\n",
			operation{id: "a", scope: "users:read", budget: budgetReads}, ""},
		{"PostSpendsWrites", "    post:\n      operationId: b\n      security: [{k: []}]\n      x-scope: users:write\n",
			operation{id: "b", scope: "users:write", budget: budgetWrites}, ""},
		{"ReadSentAsPost", "    post:\n      operationId: c\n      security: [{k: []}]\n      x-scope: users:read\n      x-rate-budget: read\n",
			operation{id: "c", scope: "users:read", budget: budgetReads}, ""},
		{"PublicUnlimited", "    get:\n      operationId: d\n      security: []\n      x-rate-budget: none\n",
			operation{id: "d", public: true, budget: budgetNone}, ""},
		{"PublicLimited", "    get:\n      operationId: e\n      security: []\n",
			operation{id: "e", public: true, budget: budgetReads}, ""},
		{"NoSecurity", "    get:\n      operationId: f\n", operation{}, "declares no security"},
		{"UnknownScope", "    get:\n      operationId: g\n      security: [{k: []}]\n      x-scope: users:everything\n", operation{}, "no valid x-scope"},
		{"UnknownBudget", "    get:\n      operationId: h\n      security: []\n      x-rate-budget: lots\n", operation{}, "not read, write or none"},
		{"DeprecatedWithoutDate", "    get:\n      operationId: i\n      security: []\n      deprecated: true\n", operation{}, "no x-deprecated-at"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec, err := openapi3.NewLoader().LoadFromData([]byte(head + tt.op + resp))
			if err != nil {
				t.Fatal(err)
			}
			ops, err := operations(spec)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("operations() error = %v, want one saying %q", err, tt.err)
				}
				return
			}
			if err != nil || len(ops) != 1 {
				t.Fatalf("operations() = %d records, %v; want 1", len(ops), err)
			}
			got := ops[0]
			if got.id != tt.want.id || got.public != tt.want.public || got.scope != tt.want.scope || got.budget != tt.want.budget {
				t.Errorf("record = {id %s, public %v, scope %q, budget %s}, want {id %s, public %v, scope %q, budget %s}",
					got.id, got.public, got.scope, got.budget, tt.want.id, tt.want.public, tt.want.scope, tt.want.budget)
			}
		})
	}
}
