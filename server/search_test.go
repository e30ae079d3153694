package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"userapi/gen"
	"userapi/server"
	"userapi/store"
	"userapi/store/storetest"
)

// searchServer serves a new database holding users with these names, each
// with a distinct email, and returns them as created.
func searchServer(t *testing.T, names ...string) (*testServer, []gen.User) {
	t.Helper()
	s := newServer(t, nil)
	var users []gen.User
	for i, name := range names {
		users = append(users, s.do("POST", "/users", map[string]any{"name": name, "email": fmt.Sprintf("user%d@example.com", i)}).
			wantStatus(t, http.StatusCreated).user(t))
	}
	return s, users
}

// names lists the names of a page's users.
func names(users []gen.User) []string {
	var out []string
	for _, u := range users {
		out = append(out, u.Name)
	}
	return out
}

func TestListUsers_Search(t *testing.T) {
	t.Parallel()
	s, _ := searchServer(t, "Ada Lovelace", "José Núñez", "100% Ada", "a_b", `back\slash`, "O'Brien", "ADA KING", "ab")
	tests := []struct {
		q    string
		want []string
	}{
		{"ada", []string{"Ada Lovelace", "100% Ada", "ADA KING"}},
		{"jose nu", []string{"José Núñez"}},
		{"%", []string{"100% Ada"}},
		{"_", []string{"a_b"}},
		{`\`, []string{`back\slash`}},
		{"'", []string{"O'Brien"}},
		{"a_", []string{"a_b"}},
		{"0%", []string{"100% Ada"}},
		{"user3@", []string{"a_b"}},
		{"'; DROP TABLE users; --", nil},
	}
	for _, tt := range tests {
		page := s.do("GET", "/users?q="+url.QueryEscape(tt.q), nil).wantStatus(t, http.StatusOK).page(t)
		if got := names(page.Items); !slices.Equal(got, tt.want) {
			t.Errorf("GET /users?q=%s = %q, want %q", tt.q, got, tt.want)
		}
	}
}

func TestListUsers_SortAndCount(t *testing.T) {
	t.Parallel()
	s, _ := searchServer(t, "b", "a", "c", "a")
	page := s.do("GET", "/users?sort=-name&count=exact", nil).wantStatus(t, http.StatusOK).page(t)
	if got := names(page.Items); !slices.Equal(got, []string{"c", "b", "a", "a"}) || page.Items[2].Id < page.Items[3].Id {
		t.Errorf("GET /users?sort=-name = %+v, want c, b, a, a with ties by id descending", page.Items)
	}
	if page.Total == nil || *page.Total != 4 || page.TotalIsEstimate == nil || *page.TotalIsEstimate {
		t.Errorf("count=exact: total %v, estimate %v; want 4, false", page.Total, page.TotalIsEstimate)
	}
	page = s.do("GET", "/users?q=a&count=estimated", nil).wantStatus(t, http.StatusOK).page(t)
	if page.Total == nil || page.TotalIsEstimate == nil || !*page.TotalIsEstimate {
		t.Errorf("count=estimated: total %v, estimate %v; want an estimate", page.Total, page.TotalIsEstimate)
	}
	page = s.do("GET", "/users", nil).wantStatus(t, http.StatusOK).page(t)
	if page.Total != nil || page.TotalIsEstimate != nil {
		t.Errorf("no count: total %v, estimate %v; want neither", page.Total, page.TotalIsEstimate)
	}
}

// A cursor walk returns every user once, in order; a cursor sent with
// another query, or changed in any way, is a 422 naming query.cursor.
func TestListUsers_Cursors(t *testing.T) {
	t.Parallel()
	s, users := searchServer(t, "Eve", "Bob", "Ann", "Dan", "Cid")
	var walked []string
	path := "/users?sort=name&limit=2"
	next := path
	var cursors []string
	for {
		page := s.do("GET", next, nil).wantStatus(t, http.StatusOK).page(t)
		walked = append(walked, names(page.Items)...)
		if page.NextCursor == nil {
			break
		}
		cursors = append(cursors, *page.NextCursor)
		next = path + "&cursor=" + url.QueryEscape(*page.NextCursor)
	}
	if want := []string{"Ann", "Bob", "Cid", "Dan", "Eve"}; !slices.Equal(walked, want) {
		t.Fatalf("walk by name = %q, want %q", walked, want)
	}
	good := cursors[0]
	raw, _ := base64.RawURLEncoding.DecodeString(good)
	flipped := bytes.Clone(raw)
	flipped[len(flipped)-3] ^= 0x04
	otherSort := s.do("GET", "/users?sort=-name&limit=2", nil).wantStatus(t, http.StatusOK).page(t).NextCursor
	tests := []struct {
		name, query, cursor, want string
	}{
		{"OtherSort", "sort=-name", good, "another q, filter or sort"},
		{"OtherQ", "sort=name&q=a", good, "another q, filter or sort"},
		{"OtherFilter", "sort=name&created_after=2020-01-01T00:00:00Z", good, "another q, filter or sort"},
		{"FromOtherSort", "sort=name", *otherSort, "another q, filter or sort"},
		{"Truncated", "sort=name", good[:len(good)-2], "not a cursor this API returned"},
		{"BitFlipped", "sort=name", base64.RawURLEncoding.EncodeToString(flipped), "not a cursor this API returned"},
		{"Garbage", "sort=name", "!!!", "not a cursor this API returned"},
		{"WithOffset", "sort=name&offset=1", good, "cannot be combined with offset"},
	}
	for _, tt := range tests {
		res := s.do("GET", "/users?"+tt.query+"&cursor="+url.QueryEscape(tt.cursor), nil).wantStatus(t, http.StatusUnprocessableEntity)
		wantField(t, tt.name, res.problem(t), "query.cursor", tt.want)
	}
	// A cursor of an earlier version still pages in id order.
	legacy := base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprint("after:", users[1].Id)))
	page := s.do("GET", "/users?cursor="+legacy, nil).wantStatus(t, http.StatusOK).page(t)
	if got := names(page.Items); !slices.Equal(got, []string{"Ann", "Dan", "Cid"}) {
		t.Errorf("legacy cursor after %d = %q, want Ann, Dan, Cid", users[1].Id, got)
	}
}

func wantField(t *testing.T, name string, p gen.Problem, location, message string) {
	t.Helper()
	if p.Errors != nil {
		for _, e := range *p.Errors {
			if e.Location == location && strings.Contains(e.Message, message) {
				return
			}
		}
	}
	t.Errorf("%s: problem %+v, want an error at %s saying %q", name, p, location, message)
}

func TestListUsers_BadParameters(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil)
	tests := []struct {
		query, location, message string
	}{
		{"q=" + strings.Repeat("a", 201), "query.q", ""},
		{"q=", "query.q", ""},
		{"sort=age", "query.sort", "id, -id, name, -name, email, -email, created_at, -created_at, updated_at, -updated_at"},
		{"sort=name,id", "query.sort", ""},
		{"created_after=yesterday", "query.created_after", ""},
		{"updated_before=2026-13-01T00:00:00Z", "query.updated_before", ""},
		{"created_after=2026-02-01T00:00:00Z&created_before=2026-01-01T00:00:00Z", "query.created_before", "later than created_after"},
		{"updated_after=2026-01-01T00:00:00Z&updated_before=2026-01-01T00:00:00Z", "query.updated_before", "later than updated_after"},
	}
	for _, path := range []string{"/users?", "/users/export?"} {
		for _, tt := range tests {
			res := s.do("GET", path+tt.query, nil)
			if res.status != http.StatusUnprocessableEntity {
				t.Errorf("GET %s%s = %d, want 422", path, tt.query, res.status)
				continue
			}
			wantField(t, path+tt.query, res.problem(t), tt.location, tt.message)
		}
	}
	res := s.do("GET", "/users?count=some", nil).wantStatus(t, http.StatusUnprocessableEntity)
	wantField(t, "count=some", res.problem(t), "query.count", "estimated, exact")
	res = s.do("GET", "/users/export?format=xlsx", nil).wantStatus(t, http.StatusUnprocessableEntity)
	wantField(t, "format=xlsx", res.problem(t), "query.format", "csv, ndjson")
}

func TestExportUsers_CSV(t *testing.T) {
	t.Parallel()
	s, users := searchServer(t, "Ada, \"the\" Countess", "=HYPERLINK(\"http://x\")", "+1", "-2", "@SUM(A1)", "\tTab", "Line\nbreak", "Plain", "\rReturn")
	res := s.do("GET", "/users/export?format=csv", nil).wantStatus(t, http.StatusOK)
	if cd := res.header.Get("Content-Disposition"); cd != `attachment; filename="users.csv"` {
		t.Errorf("Content-Disposition = %q, want an attachment users.csv", cd)
	}
	records, err := csv.NewReader(bytes.NewReader(res.body)).ReadAll()
	if err != nil {
		t.Fatalf("the export does not parse as CSV: %v\n%s", err, res.body)
	}
	if want := []string{"id", "name", "email", "created_at", "updated_at", "state"}; !slices.Equal(records[0], want) {
		t.Errorf("header = %q, want %q", records[0], want)
	}
	// encoding/csv drops a lone carriage return when it ends records with
	// CRLF, as RFC 4180 asks; the cell must still be neutralised.
	if !bytes.Contains(res.body, []byte("\"'Return\"")) {
		t.Errorf("export %q: want the cell \\rReturn as \"'Return\"", res.body)
	}
	users = users[:len(users)-1]
	records = records[:len(records)-1]
	if len(records) != len(users)+1 {
		t.Fatalf("%d rows, want %d users and a header", len(records), len(users))
	}
	for i, u := range users {
		name := u.Name
		if strings.ContainsAny(name[:1], "=+-@\t\r") {
			name = "'" + name
		}
		want := []string{fmt.Sprint(u.Id), name, u.Email, u.CreatedAt.Format(time.RFC3339Nano), u.UpdatedAt.Format(time.RFC3339Nano), string(u.State)}
		if got := records[i+1]; !slices.Equal(got, want) {
			t.Errorf("row %d = %q, want %q", i+1, got, want)
		}
	}
}

func TestExportUsers_NDJSON(t *testing.T) {
	t.Parallel()
	s, users := searchServer(t, "Ann", "Bob", "Ánn")
	res := s.do("GET", "/users/export?q=ann&sort=-id", nil).wantStatus(t, http.StatusOK)
	if ct := res.header.Get("Content-Type"); ct != "application/x-ndjson" {
		t.Errorf("Content-Type = %q, want application/x-ndjson", ct)
	}
	spec, err := server.LoadSpec()
	if err != nil {
		t.Fatal(err)
	}
	schema := spec.Components.Schemas["User"].Value
	var got []gen.User
	lines := bufio.NewScanner(bytes.NewReader(res.body))
	for lines.Scan() {
		var v any
		if err := json.Unmarshal(lines.Bytes(), &v); err != nil {
			t.Fatalf("line %q: %v", lines.Text(), err)
		}
		if err := schema.VisitJSON(v, openapi3.MultiErrors()); err != nil {
			t.Errorf("line %q is not a User: %v", lines.Text(), err)
		}
		var u gen.User
		_ = json.Unmarshal(lines.Bytes(), &u)
		got = append(got, u)
	}
	if want := []gen.User{users[2], users[0]}; !slices.Equal(got, want) {
		t.Errorf("export q=ann sort=-id = %+v, want %+v", got, want)
	}
}

// A client that leaves in the middle of an export stops it: the server
// reads no more than the batch it is in and the next (a write to the closed
// connection fails, and the request's context is cancelled, which cancels
// the statement), and leaves no statement running. Each batch is counted as
// the server's pool sends it; a server that went on reading would send all
// of them.
func TestExportUsers_ClientLeaves(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := storetest.NewDB(t)
	admin := storetest.Pool(t, dbURL, 1)
	const users = 30 * store.ExportBatch
	storetest.BulkLoad(t, admin, `INSERT INTO users (name, email, email_key)
		SELECT 'User ' || g, 'x' || g || '@example.com', 'x' || g || '@example.com' FROM generate_series(1, $1) g`, users)
	var batches batchCounter
	pool := storetest.PoolWith(t, dbURL, 2, func(c *pgxpool.Config) { c.ConnConfig.Tracer = &batches })
	s := newServer(t, store.NewUsers(pool))

	// A bare connection with a small receive buffer, so that the server
	// cannot get far ahead of what the client reads, and so that the
	// client is gone, its connection reset (unread data, no linger), when
	// Close returns.
	dialer := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4<<10) })
	}}
	conn, err := dialer.Dial("tcp", strings.TrimPrefix(s.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "GET /users/export?format=csv&sort=name HTTP/1.1\r\nHost: userapi\r\n\r\n")
	head := make([]byte, 64<<10)
	n, err := io.ReadAtLeast(conn, head, len(head))
	if err != nil || !bytes.HasPrefix(head[:n], []byte("HTTP/1.1 200 ")) {
		t.Fatalf("export answered %q, %v", head[:min(n, 200)], err)
	}
	_ = conn.(*net.TCPConn).SetLinger(0)
	conn.Close()
	atClose := batches.Load()

	// Wait (without a time limit of its own: the test's deadline is it)
	// until the export's session is idle or gone.
	for {
		var running int
		if err := admin.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND pid <> pg_backend_pid() AND state <> 'idle'`).Scan(&running); err != nil {
			t.Fatal(err)
		}
		if running == 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if atClose < 1 || atClose >= users/store.ExportBatch {
		t.Fatalf("%d of %d batches read when the client left: the counter misses the export's statements, or the export was over",
			atClose, users/store.ExportBatch)
	}
	after := batches.Load() - atClose
	t.Logf("%d batches read before the client left, %d after", atClose, after)
	if after > 2 {
		t.Errorf("the server read %d batches after the client left (%d before), want at most 2", after, atClose)
	}
}

// batchCounter counts the export's batches (statements reading users) as
// a pool sends them.
type batchCounter struct{ atomic.Int64 }

func (b *batchCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	if strings.Contains(data.SQL, " FROM users") {
		b.Add(1)
	}
	return ctx
}

func (*batchCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
