package store_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"userapi/store"
	"userapi/store/storetest"
)

// recorder is one connection that remembers the last query run on it.
type recorder struct {
	*pgx.Conn
	sql  string
	args []any
}

func (r *recorder) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	r.sql, r.args = sql, args
	return r.Conn.Query(ctx, sql, args...)
}

// seededConn is one connection to a new database holding n users named
// u1@example.com to u<n>@example.com, with fresh planner statistics.
func seededConn(t testing.TB, n int) *pgx.Conn {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, storetest.NewDB(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	storetest.BulkLoad(t, conn, `INSERT INTO users (name, email, email_key)
		SELECT 'User ' || g, 'u' || g || '@example.com', 'u' || g || '@example.com' FROM generate_series(1, $1) g`, n)
	if _, err := conn.Exec(ctx, "ANALYZE users"); err != nil {
		t.Fatal(err)
	}
	return conn
}

// After five runs of a prepared statement PostgreSQL may switch it to a
// generic plan, one made without looking at the parameters; a connection
// that listed with large offsets then kept that plan for the email lookup.
// Forcing generic plans makes that switch certain: the lookup by email must
// still use the email index.
func TestUsers_ListByEmailGenericPlanUsesIndex(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	conn := seededConn(t, 5000)
	if _, err := conn.Exec(ctx, "SET plan_cache_mode = force_generic_plan"); err != nil {
		t.Fatal(err)
	}
	db := &recorder{Conn: conn}
	users := store.NewUsers(db)
	for range 6 {
		if _, err := users.List(ctx, store.UserFilter{Offset: 4000, Limit: 100}); err != nil {
			t.Fatal(err)
		}
	}
	page, err := users.List(ctx, store.UserFilter{Offset: 0, Limit: 100, UserQuery: store.UserQuery{Email: ptr("U42@Example.com")}})
	if err != nil || len(page.Users) != 1 || page.Users[0].Email != "u42@example.com" {
		t.Fatalf("List(email U42@Example.com) = %+v, %v; want user u42@example.com", page, err)
	}

	// EXPLAIN the statement List ran, prepared as pgx prepares it.
	if _, err := conn.Exec(ctx, "PREPARE by_email AS "+db.sql); err != nil {
		t.Fatal(err)
	}
	lits := make([]string, len(db.args))
	for i, a := range db.args {
		lits[i] = literal(t, a)
	}
	var plan strings.Builder
	rows, err := conn.Query(ctx, "EXPLAIN EXECUTE by_email("+strings.Join(lits, ", ")+")", pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		t.Fatal(err)
	}
	var line string
	if _, err := pgx.ForEachRow(rows, []any{&line}, func() error { plan.WriteString(line + "\n"); return nil }); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(plan.String(), "users_email_key") || strings.Contains(plan.String(), "Seq Scan") {
		t.Errorf("generic plan of the email lookup:\n%s\nwant a scan of the users_email_key index", plan.String())
	}
}

// literal writes a statement argument as SQL, for EXPLAIN EXECUTE.
func literal(t *testing.T, arg any) string {
	t.Helper()
	switch v := arg.(type) {
	case int64:
		return strconv.FormatInt(v, 10)
	case string:
		return "'" + strings.ReplaceAll(v, "'", "''") + "'"
	case time.Time:
		return "'" + v.Format(time.RFC3339Nano) + "'::timestamptz"
	}
	t.Fatalf("no literal for %T", arg)
	return ""
}

// BenchmarkUsers_ListByEmailAfterOffsets looks a user up by email on one
// connection that first listed 200 pages at offsets around 400,000, as a
// pooled connection serving both kinds of request would. (The API caps
// offsets at 10,000, which is cheap enough that PostgreSQL keeps custom
// plans; the store does not rely on that.)
func BenchmarkUsers_ListByEmailAfterOffsets(b *testing.B) {
	ctx := context.Background()
	users := store.NewUsers(seededConn(b, 500_000))
	for i := range 200 {
		if _, err := users.List(ctx, store.UserFilter{Offset: int64(400_000 + i), Limit: 100}); err != nil {
			b.Fatal(err)
		}
	}
	email := "u250000@example.com"
	for b.Loop() {
		page, err := users.List(ctx, store.UserFilter{Offset: 1, Limit: 100, UserQuery: store.UserQuery{Email: &email}})
		if err != nil || len(page.Users) != 0 {
			b.Fatalf("List(email, offset 1) = %+v, %v; want an empty page", page, err)
		}
	}
}

// A page is decoded from PostgreSQL's binary format by hand: it reads every
// field as the generic scan of GetMany does, times before 2000 and a
// deleted user's included, and as the text protocol's scan does too.
func TestList_DecodesAsScan(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := storetest.Pool(t, storetest.QuietDB(t), 2)
	if _, err := pool.Exec(ctx, `INSERT INTO users (name, email, email_key, version, created_at, updated_at, state, deleted_at) VALUES
		('Ada', 'ada@example.com', 'ada@example.com', 1, '1999-12-31 23:59:59.999999+00', '2000-01-01 00:00:00+00', 'active', NULL),
		('José Núñez ✓', 'jose@example.com', 'jose@example.com', 7, '1970-01-01 00:00:00.5+02', '2026-11-30 17:00:00.123456+00', 'suspended', NULL),
		('Gone', 'gone@example.com', 'gone@example.com', 3, '2026-01-02 03:04:05.06+00', '2026-01-02 03:04:05.07+00', 'deleted', '2026-01-02 03:04:05.07+00')`); err != nil {
		t.Fatal(err)
	}
	page, err := store.NewUsers(pool).List(ctx, store.UserFilter{Limit: 10, UserQuery: store.UserQuery{ShowDeleted: true}})
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for _, u := range page.Users {
		ids = append(ids, u.ID)
	}
	want, err := store.NewUsers(pool).GetMany(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, pool.Config().ConnString()+"&default_query_exec_mode=simple_protocol")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	text, err := store.NewUsers(conn).List(ctx, store.UserFilter{Limit: 10, UserQuery: store.UserQuery{ShowDeleted: true}})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Users) != 3 || len(want) != 3 || len(text.Users) != 3 {
		t.Fatalf("List = %d users, GetMany %d, over the text protocol %d; want 3", len(page.Users), len(want), len(text.Users))
	}
	for i := range want {
		got, w, txt := page.Users[i], want[i], text.Users[i]
		if got.DeletedAt != nil && w.DeletedAt != nil && got.DeletedAt.Equal(*w.DeletedAt) && got.DeletedAt.Location() == time.UTC {
			got.DeletedAt, w.DeletedAt, txt.DeletedAt = nil, nil, nil
		}
		if got != w || txt != w || got.CreatedAt.Location() != time.UTC {
			t.Errorf("List read %+v, over the text protocol %+v; GetMany %+v", got, txt, w)
		}
	}
}
