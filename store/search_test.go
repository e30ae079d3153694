package store_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"userapi/store"
	"userapi/store/storetest"
)

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// Every order, unfiltered, searched and within a date range, is served by
// an index on a table of 100,000 users: the plan of the statement List
// runs, with its arguments, has no sequential scan of users. A rare search
// of one or two characters reads users_short_grams; a frequent one walks
// the order's index instead, as a page fills within a few rows.
func TestUsers_ListPlansUseIndexes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	conn := connect(t)
	// Names hold hex digits and "Name"; one user in 1,000 has "Zqé" too.
	storetest.BulkLoad(t, conn, `INSERT INTO users (name, email, email_key, created_at, updated_at)
		SELECT 'Name ' || md5(g::text) || CASE WHEN g % 1000 = 0 THEN ' Zqé' ELSE '' END,
		       'u' || g || '@example.com', 'u' || g || '@example.com',
		       '2026-01-01'::timestamptz + g * interval '1 minute', '2026-01-01'::timestamptz + (g % 5000) * interval '1 hour'
		FROM generate_series(1, 100000) g`)
	exec(t, conn, "ANALYZE users")
	db := &recorder{Conn: conn}
	users := store.NewUsers(db)
	from, to := epoch.Add(24*time.Hour), epoch.Add(48*time.Hour)
	const short = "users_short_grams"
	filters := []struct {
		name string
		q    store.UserQuery
		// shortIndex: whether the plan must read short (or must not).
		shortIndex *bool
	}{
		{"All", store.UserQuery{}, nil},
		{"Search", store.UserQuery{Search: "abc1"}, nil},
		{"ShortSearch", store.UserQuery{Search: "u7"}, nil},
		{"RareShortSearch", store.UserQuery{Search: "zq"}, ptr(true)},
		{"RareAccentedSearch", store.UserQuery{Search: "QÉ"}, ptr(true)},
		{"NoShortMatch", store.UserQuery{Search: "yz"}, ptr(true)},
		{"FrequentChar", store.UserQuery{Search: "a"}, ptr(false)},
		{"FrequentPair", store.UserQuery{Search: "am"}, ptr(false)},
		{"Created", store.UserQuery{CreatedAfter: &from, CreatedBefore: &to}, nil},
		{"Updated", store.UserQuery{UpdatedAfter: &from, UpdatedBefore: &to}, nil},
	}
	indexName := regexp.MustCompile(`using (\w+)|on (\w+)`)
	for _, field := range store.UserSortFields {
		for _, desc := range []bool{false, true} {
			for _, f := range filters {
				q := f.q
				q.Sort = store.UserSort{Field: field, Desc: desc}
				page, err := users.List(ctx, store.UserFilter{UserQuery: q, Limit: 100})
				if err != nil {
					t.Fatal(err)
				}
				// The second page too: it starts with a keyset condition.
				if page.More {
					p := q.Sort.PositionOf(page.Users[len(page.Users)-1])
					if _, err := users.List(ctx, store.UserFilter{UserQuery: q, Limit: 100, After: &p}); err != nil {
						t.Fatal(err)
					}
				}
				plan := explain(t, conn, db.sql, db.args)
				var used []string
				for _, m := range indexName.FindAllStringSubmatch(plan, -1) {
					used = append(used, m[1]+m[2])
				}
				t.Logf("sort %s desc=%v %s: %v", field, desc, f.name, used)
				if strings.Contains(plan, "Seq Scan on users") {
					t.Errorf("sort %s desc=%v, %s: plan scans users sequentially:\n%s", field, desc, f.name, plan)
				}
				if want := f.shortIndex; want != nil && slices.Contains(used, short) != *want {
					t.Errorf("sort %s desc=%v, %s: plan reads %s: %v, want %v:\n%s", field, desc, f.name, short, !*want, *want, plan)
				}
			}
		}
	}
}

// A search for a fragment few users hold reads the trigram indexes after
// every ANALYZE. Walking the order's index instead reads the whole table
// to fill a page; the planner chooses that when it overestimates the share
// that match, which a coarse histogram makes it do whenever its sample
// happens to hold one of the few (migration 0017).
func TestUsers_RareSearchPlanStable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	conn := connect(t)
	// One user in 1,000 has "Xyzzy" in both name and email.
	storetest.BulkLoad(t, conn, `INSERT INTO users (name, email, email_key)
		SELECT 'Name ' || md5(g::text) || x, 'u' || g || lower(x) || '@example.com', 'u' || g || lower(x) || '@example.com'
		FROM generate_series(1, 100000) g, LATERAL (SELECT CASE WHEN g % 1000 = 0 THEN '.Xyzzy' ELSE '' END AS x) m`)
	db := &recorder{Conn: conn}
	users := store.NewUsers(db)
	for i := range 12 {
		exec(t, conn, "ANALYZE users")
		if _, err := users.List(ctx, store.UserFilter{UserQuery: store.UserQuery{Search: "xyzzy"}, Limit: 100}); err != nil {
			t.Fatal(err)
		}
		plan := explain(t, conn, db.sql, db.args)
		if !strings.Contains(plan, "users_name_trgm") || !strings.Contains(plan, "users_email_trgm") {
			t.Fatalf("after ANALYZE #%d, q=xyzzy (100 users in 100,000) does not read the trigram indexes:\n%s", i+1, plan)
		}
	}
}

// explain is the plan PostgreSQL makes for sql with these arguments.
func explain(t *testing.T, conn *pgx.Conn, sql string, args []any) string {
	t.Helper()
	rows, err := conn.Query(context.Background(), "EXPLAIN "+sql, args...)
	if err != nil {
		t.Fatal(err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(lines, "\n")
}

func connect(t *testing.T) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), storetest.NewDB(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func exec(t *testing.T, conn *pgx.Conn, sqls ...string) {
	t.Helper()
	for _, sql := range sqls {
		if _, err := conn.Exec(context.Background(), sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
}

// Walking every cursor of a query returns exactly the users, in exactly
// the order, that a plain SQL query returns, for random queries over users
// whose names differ in accents and case, share prefixes and hold the
// characters LIKE treats specially, with many equal timestamps; and users
// created during the walk never make one of the others repeat or go
// missing.
func TestUsers_ListWalkMatchesPlainSQL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	conn := connect(t)
	// Names: stems that fold alike, a number shared by ten users, and
	// creation times from a set of 50, updates from a set of 7.
	exec(t, conn, `INSERT INTO users (name, email, email_key, created_at, updated_at)
		SELECT (ARRAY['José Núñez', 'jose nunez', 'JOSÉ', 'Zoë Ådams', 'zoe adams', 'Ada Lovelace', 'ada 100%', 'a_b\\c', 'O''Brien', '=SUM(A1)'])[1 + g % 10]
		       || ' ' || (g / 10),
		       'p' || g || (ARRAY['@example.com', '@Exämple.org', '@ada.dev'])[1 + g % 3],
		       'p' || g || '@key',
		       '2026-01-01'::timestamptz + (g % 50) * interval '1 hour',
		       '2026-01-01'::timestamptz + (g % 7) * interval '1 day'
		FROM generate_series(1, 10000) g`, "ANALYZE users")
	users := store.NewUsers(conn)
	searches := []string{"", "jose", "JOSÉ", "nunez", "zoë", "ada", "lo", "%", "_", `\`, "'", "100%", "a_b", "1", "99", "ÑU", "ë", "example", "xämp", "nobody"}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 40 {
		q := store.UserQuery{
			Search: searches[rng.IntN(len(searches))],
			Sort:   store.UserSort{Field: store.UserSortFields[rng.IntN(len(store.UserSortFields))], Desc: rng.IntN(2) == 0},
		}
		if rng.IntN(3) == 0 {
			h1, h2 := rng.IntN(50), rng.IntN(50)
			a := epoch.Add(time.Duration(min(h1, h2))*time.Hour - time.Minute)
			b := epoch.Add(time.Duration(max(h1, h2))*time.Hour + time.Minute)
			q.CreatedAfter, q.CreatedBefore = &a, &b
		}
		if rng.IntN(4) == 0 {
			a := epoch.Add(time.Duration(rng.IntN(7))*24*time.Hour - time.Minute)
			q.UpdatedAfter = &a
		}
		limit := 1 + rng.IntN(400)
		want := plainSQL(t, conn, q)
		var got []int64
		f := store.UserFilter{UserQuery: q, Limit: limit}
		for pages := 0; ; pages++ {
			if pages > len(want)+1 {
				t.Fatalf("query %d %+v: more pages than users", i, q)
			}
			page, err := users.List(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			for _, u := range page.Users {
				got = append(got, u.ID)
			}
			if !page.More {
				break
			}
			// Another user arrives between pages, named to sort anywhere.
			if _, err := users.Create(ctx, store.NewUser{Name: searches[rng.IntN(len(searches))] + "x", Email: fmt.Sprintf("new%d.%d@example.com", i, pages)}); err != nil {
				t.Fatal(err)
			}
			p := q.Sort.PositionOf(page.Users[len(page.Users)-1])
			f.After = &p
		}
		if dup := firstDuplicate(got); dup != 0 {
			t.Errorf("query %d %+v, limit %d: user %d listed twice", i, q, limit, dup)
		}
		old := slices.DeleteFunc(got, func(id int64) bool { return id > 10000 })
		if !slices.Equal(old, want) {
			t.Errorf("query %d %+v, limit %d: walked %d users, want %d as plain SQL lists them\n got %v\nwant %v",
				i, q, limit, len(old), len(want), head(old), head(want))
		}
	}
}

// plainSQL lists the ids of the first 10,000 users q selects with no index
// in mind: strpos instead of LIKE, so no pattern escaping is involved.
func plainSQL(t *testing.T, conn *pgx.Conn, q store.UserQuery) []int64 {
	t.Helper()
	dir := ""
	if q.Sort.Desc {
		dir = " DESC"
	}
	sql := `SELECT id FROM users WHERE id <= 10000
		AND ($1 = '' OR strpos(userapi_fold(name), userapi_fold($1)) > 0 OR strpos(userapi_fold(email), userapi_fold($1)) > 0)
		AND ($2::timestamptz IS NULL OR created_at > $2) AND ($3::timestamptz IS NULL OR created_at < $3)
		AND ($4::timestamptz IS NULL OR updated_at > $4)
		ORDER BY ` + string(q.Sort.Field) + dir + ", id" + dir
	rows, err := conn.Query(context.Background(), sql, q.Search, q.CreatedAfter, q.CreatedBefore, q.UpdatedAfter)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func firstDuplicate(ids []int64) int64 {
	seen := map[int64]bool{}
	for _, id := range ids {
		if seen[id] {
			return id
		}
		seen[id] = true
	}
	return 0
}

func head(ids []int64) []int64 { return ids[:min(len(ids), 20)] }

// Count gives the exact number, or the planner's estimate, as asked.
func TestUsers_ListCount(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	conn := connect(t)
	storetest.BulkLoad(t, conn, `INSERT INTO users (name, email, email_key)
		SELECT 'User ' || g, 'c' || g || '@example.com', 'c' || g || '@example.com' FROM generate_series(1, 30000) g`)
	exec(t, conn, "ANALYZE users")
	users := store.NewUsers(conn)
	q := store.UserQuery{Search: "user 2"} // 2, 20-29, ..., 20000-29999
	page, err := users.List(ctx, store.UserFilter{UserQuery: q, Limit: 1, Count: store.CountExact})
	if err != nil || page.Total == nil || *page.Total != (store.UserTotal{N: 11111}) {
		t.Fatalf("List(count exact) total = %+v, %v; want 11111, exact", page.Total, err)
	}
	page, err = users.List(ctx, store.UserFilter{UserQuery: q, Limit: 1, Count: store.CountEstimated})
	if err != nil || page.Total == nil || !page.Total.Estimate || page.Total.N < 1 {
		t.Fatalf("List(count estimated) total = %+v, %v; want an estimate", page.Total, err)
	}
	// A count that outlives its time limit gives the estimate instead.
	// (Folding 30,000 names and emails takes far longer than the
	// shortest time limit, a millisecond.)
	all := store.UserQuery{Search: "@example.com"}
	page, err = users.List(ctx, store.UserFilter{UserQuery: all, Limit: 1, Count: store.CountExact, ExactCountWithin: time.Nanosecond})
	if err != nil || page.Total == nil || !page.Total.Estimate {
		t.Fatalf("List(count exact within 1ns) total = %+v, %v; want the estimate", page.Total, err)
	}
}
