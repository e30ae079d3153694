package server

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/labstack/echo/v4"

	"userapi/store"
)

// countingRouter counts the writes it is told of.
type countingRouter struct{ wrote int }

func (*countingRouter) Reader(context.Context, string) store.Reader { return store.Reader{} }
func (r *countingRouter) Wrote(context.Context, string)             { r.wrote++ }

// An operation's rate budget, not its method, says whether it wrote:
// POST /users/batch-get reads, and leaves no write to wait for.
func TestReadYourWrites_ByBudget(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		method string
		b      budget
		wrote  int
	}{
		{http.MethodPost, budgetReads, 0},
		{http.MethodGet, budgetReads, 0},
		{http.MethodGet, budgetNone, 0},
		{http.MethodPost, budgetWrites, 1},
		{http.MethodDelete, budgetWrites, 1},
	} {
		r := &countingRouter{}
		c := echo.New().NewContext(httptest.NewRequest(tt.method, "/", nil), httptest.NewRecorder())
		err := readYourWrites(r, tt.b)(func(c echo.Context) error { return c.NoContent(http.StatusOK) })(c)
		if err != nil || r.wrote != tt.wrote {
			t.Errorf("%s spending %s: %v, %d writes told; want %d", tt.method, tt.b, err, r.wrote, tt.wrote)
		}
	}
}
