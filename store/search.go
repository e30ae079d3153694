package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"userapi/email"
)

// UserSortField is a column users can be ordered by.
type UserSortField string

// The orders of users; ties always break on id.
const (
	SortByID        UserSortField = "id"
	SortByName      UserSortField = "name"
	SortByEmail     UserSortField = "email"
	SortByCreatedAt UserSortField = "created_at"
	SortByUpdatedAt UserSortField = "updated_at"
)

// UserSortFields are the valid UserSortField values.
var UserSortFields = []UserSortField{SortByID, SortByName, SortByEmail, SortByCreatedAt, SortByUpdatedAt}

// IsTime reports whether the field holds timestamps (else text, or the id).
func (f UserSortField) IsTime() bool { return f == SortByCreatedAt || f == SortByUpdatedAt }

// UserSort is an order of users: by Field, then by id, both descending when
// Desc is set. The zero value is id order.
type UserSort struct {
	Field UserSortField
	Desc  bool
}

// UserQuery selects users and orders them. Nil and empty fields select
// everyone.
type UserQuery struct {
	// Search keeps users whose name or email contains it, ignoring case and
	// accents (name_fold and email_fold, from userapi_fold in migration 0009); it matches literally.
	Search string
	// Email keeps only the user with this email, as package email compares
	// addresses.
	Email *string
	// The time filters are exclusive bounds.
	CreatedAfter, CreatedBefore *time.Time
	UpdatedAfter, UpdatedBefore *time.Time
	// State keeps only the users in this state.
	State *UserState
	// ShowDeleted lists deleted users too; without it they are hidden,
	// whatever State says.
	ShowDeleted bool
	Sort        UserSort
}

// UserPosition is a place in an order of users: right after the user with
// this sort key (Text or Time, as the field holds; neither for id) and id.
type UserPosition struct {
	ID   int64
	Text string
	Time time.Time
}

// PositionOf is u's place in the order s.
func (s UserSort) PositionOf(u User) UserPosition {
	p := UserPosition{ID: u.ID}
	switch s.Field {
	case SortByName:
		p.Text = u.Name
	case SortByEmail:
		p.Text = u.Email
	case SortByCreatedAt:
		p.Time = u.CreatedAt
	case SortByUpdatedAt:
		p.Time = u.UpdatedAt
	}
	return p
}

// UserCount says whether and how List counts every user its query selects.
type UserCount int

const (
	CountNone UserCount = iota
	// CountEstimated asks the planner: cheap whatever the table's size.
	CountEstimated
	// CountExact counts, for at most the filter's ExactCountWithin, and
	// gives the estimate past it.
	CountExact
)

// UserTotal is how many users a query selects, or the planner's estimate.
type UserTotal struct {
	N        int64
	Estimate bool
}

// DefaultExactCountWithin bounds an exact count when the filter sets no bound.
const DefaultExactCountWithin = 500 * time.Millisecond

// ErrBadQuery is a UserQuery the store cannot run, such as an unknown sort
// field; the HTTP layer validates before it gets here.
var ErrBadQuery = errors.New("bad user query")

// userColumns are what every list reads, in scanUser's order.
const userColumns = "id, name, email, version, created_at, updated_at, state, deleted_at"

// statement is SQL text built from fixed fragments, and its arguments.
// Each combination of filters and order is its own text, so that pgx
// prepares it as its own statement with its own plan: a statement with
// optional conditions ("$1 IS NULL OR ...") gets, after a few runs, a generic
// plan that cannot use the conditions' indexes, and keeps it.
type statement struct {
	sql   strings.Builder
	args  []any
	conds []string
}

func (st *statement) arg(v any) string {
	st.args = append(st.args, v)
	return "$" + strconv.Itoa(len(st.args))
}

func (st *statement) where(cond string) { st.conds = append(st.conds, cond) }

// The search pattern is folded and escaped in SQL, after folding: unaccent
// turns some characters into several, and none may become a wildcard.
const searchPattern = `'%%' || replace(replace(replace(userapi_fold(%s), '\', '\\'), '%%', '\%%'), '_', '\_') || '%%'`

// shortGrams are the codes of the widest substrings (of one or two
// characters) of the folded search, as short_grams holds them, for a search
// of one or two characters, which may fold to more (æ becomes ae) or to
// none. The pattern stays the exact test; this one lets the index narrow
// the rows.
const shortGrams = `userapi_grams(ARRAY[userapi_fold(%[1]s)], ARRAY[greatest(least(char_length(userapi_fold(%[1]s)), 2), 1)])`

// filter adds q's conditions (not its order) to st. Every list, count and
// export goes through it, so none shows a deleted user unless asked.
func (st *statement) filter(q UserQuery) {
	if !q.ShowDeleted {
		st.where("state <> 'deleted'")
	}
	if q.State != nil {
		st.where("state = " + st.arg(string(*q.State)))
	}
	if q.Email != nil {
		st.where("email_key = " + st.arg(email.Key(*q.Email)))
	}
	if q.Search != "" {
		search := st.arg(q.Search)
		p := fmt.Sprintf(searchPattern, search)
		cond := "(name_fold LIKE " + p + " OR email_fold LIKE " + p + ")"
		if utf8.RuneCountInString(q.Search) < 3 {
			// No trigram in one or two characters: users_short_grams
			// (migration 0014) finds a rare fragment; for a frequent one
			// the plan walks the order's index and filters.
			cond += " AND short_grams @> " + fmt.Sprintf(shortGrams, search)
		}
		st.where(cond)
	}
	for _, b := range []struct {
		col, op string
		t       *time.Time
	}{
		{"created_at", ">", q.CreatedAfter}, {"created_at", "<", q.CreatedBefore},
		{"updated_at", ">", q.UpdatedAfter}, {"updated_at", "<", q.UpdatedBefore},
	} {
		if b.t != nil {
			st.where(b.col + " " + b.op + " " + st.arg(*b.t))
		}
	}
}

func (st *statement) writeWhere() {
	if len(st.conds) > 0 {
		st.sql.WriteString(" WHERE ")
		st.sql.WriteString(strings.Join(st.conds, " AND "))
	}
}

// listStatement selects one page of f, plus one row to tell whether more
// follow.
func listStatement(f UserFilter) (*statement, error) {
	s := f.Sort
	if s.Field == "" {
		s.Field = SortByID
	}
	if !validSort(s.Field) {
		return nil, fmt.Errorf("%w: sort by %q", ErrBadQuery, s.Field)
	}
	st := &statement{}
	st.filter(f.UserQuery)
	cmp, dir := ">", ""
	if s.Desc {
		cmp, dir = "<", " DESC"
	}
	if p := f.After; p != nil {
		switch {
		case s.Field == SortByID:
			st.where("id " + cmp + " " + st.arg(p.ID))
		case s.Field.IsTime():
			st.where(fmt.Sprintf("(%s, id) %s (%s, %s)", s.Field, cmp, st.arg(p.Time), st.arg(p.ID)))
		default:
			st.where(fmt.Sprintf("(%s, id) %s (%s, %s)", s.Field, cmp, st.arg(p.Text), st.arg(p.ID)))
		}
	}
	st.sql.WriteString("SELECT " + userColumns + " FROM users")
	st.writeWhere()
	if s.Field != SortByID {
		st.sql.WriteString(" ORDER BY " + string(s.Field) + dir + ", id" + dir)
	} else {
		st.sql.WriteString(" ORDER BY id" + dir)
	}
	st.sql.WriteString(" LIMIT " + st.arg(int64(f.Limit)+1))
	if f.Offset > 0 && f.After == nil {
		st.sql.WriteString(" OFFSET " + st.arg(f.Offset))
	}
	return st, nil
}

func validSort(f UserSortField) bool {
	for _, v := range UserSortFields {
		if f == v {
			return true
		}
	}
	return false
}

// list runs f's page on db.
func list(ctx context.Context, db DB, f UserFilter) (UserPage, error) {
	st, err := listStatement(f)
	if err != nil {
		return UserPage{}, err
	}
	rows, err := db.Query(ctx, st.sql.String(), st.args...)
	if err != nil {
		return UserPage{}, err
	}
	users, err := scanUsers(rows, f.Limit+1) // one more says whether more follow
	if err != nil {
		return UserPage{}, err
	}
	page := UserPage{Users: users, More: len(users) > f.Limit}
	if page.More {
		page.Users = users[:f.Limit]
	}
	return page, nil
}

func scanUser(row pgx.Rows) (User, error) {
	var u User
	err := row.Scan(&u.ID, &u.Name, &u.Email, &u.Version, &u.CreatedAt, &u.UpdatedAt, &u.State, &u.DeletedAt)
	u.CreatedAt, u.UpdatedAt = u.CreatedAt.UTC(), u.UpdatedAt.UTC()
	if u.DeletedAt != nil {
		t := u.DeletedAt.UTC()
		u.DeletedAt = &t
	}
	return u, err
}

// count counts q's users as asked, on db.
func count(ctx context.Context, db DB, q UserQuery, how UserCount, within time.Duration) (*UserTotal, error) {
	switch how {
	case CountNone:
		return nil, nil
	case CountExact:
		n, err := exactCount(ctx, db, q, within)
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "57014" && ctx.Err() == nil {
			break // the statement timeout: estimate instead
		}
		if err != nil {
			return nil, err
		}
		return &UserTotal{N: n}, nil
	}
	n, err := estimatedCount(ctx, db, q)
	if err != nil {
		return nil, err
	}
	return &UserTotal{N: n, Estimate: true}, nil
}

// exactCount counts in a transaction of its own (a savepoint within the
// context's), whose statement timeout is within.
func exactCount(ctx context.Context, db DB, q UserQuery, within time.Duration) (int64, error) {
	if within <= 0 {
		within = DefaultExactCountWithin
	}
	tx, err := Begin(ctx, db)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback(ctx)                                     //nolint:errcheck // read only: nothing to commit
	ms := strconv.FormatInt(max(1, within.Milliseconds()), 10) // 0 would be no limit
	if _, err := tx.Exec(ctx, "SELECT set_config('statement_timeout', $1, true)", ms); err != nil {
		return 0, err
	}
	st := &statement{}
	st.filter(q)
	st.sql.WriteString("SELECT count(*) FROM users")
	st.writeWhere()
	var n int64
	err = tx.QueryRow(ctx, st.sql.String(), st.args...).Scan(&n)
	return n, err
}

// estimatedCount is the planner's estimate of how many rows q selects.
func estimatedCount(ctx context.Context, db DB, q UserQuery) (int64, error) {
	st := &statement{}
	st.filter(q)
	st.sql.WriteString("EXPLAIN (FORMAT JSON) SELECT 1 FROM users")
	st.writeWhere()
	var raw []byte
	if err := conn(ctx, db).QueryRow(ctx, st.sql.String(), st.args...).Scan(&raw); err != nil {
		return 0, err
	}
	var plan []struct {
		Plan struct {
			Rows float64 `json:"Plan Rows"`
		}
	}
	if err := json.Unmarshal(raw, &plan); err != nil || len(plan) == 0 {
		return 0, fmt.Errorf("read the plan's row estimate: %v", err)
	}
	return int64(plan[0].Plan.Rows), nil
}

// ExportBatch is how many users Export reads per statement.
const ExportBatch = 1000

// UserExporter streams every user a query selects.
type UserExporter interface {
	// Export calls fn with each user q selects, in q's order, as one
	// snapshot shows them. It stops at fn's first error and returns it.
	Export(ctx context.Context, q UserQuery, fn func(User) error) error
}

var _ UserExporter = (*Users)(nil)

// Export calls fn with each user q selects, in q's order. It reads in
// keyset batches of ExportBatch, so its memory does not grow with the
// table, inside one REPEATABLE READ, READ ONLY transaction, so every batch
// sees the same snapshot: users changed meanwhile appear as they were when
// the export began, each exactly once. Cancelling ctx cancels the running
// statement and ends the transaction.
func (s *Users) Export(ctx context.Context, q UserQuery, fn func(User) error) (err error) {
	defer wrap(&err, "Users.Export")
	sent := false
	var fnErr error // fn's own, returned as it is
	err = onReader(ctx, s.db, func(db DB) error {
		if sent {
			// A replica failed mid-file: the rows sent cannot be taken
			// back, so the export ends here.
			return errExportCut
		}
		return export(ctx, db, q, func(u User) error {
			sent = true
			if fnErr = fn(u); fnErr != nil {
				return errExportCut
			}
			return nil
		})
	})
	switch {
	case fnErr != nil:
		return fnErr
	case errors.Is(err, errExportCut):
		return ErrUnavailable
	}
	return translate(err)
}

var errExportCut = errors.New("export cut short")

func export(ctx context.Context, db DB, q UserQuery, fn func(User) error) error {
	tx, err := db.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // read only: nothing to commit
	if _, err := tx.Exec(ctx, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"); err != nil {
		return err
	}
	f := UserFilter{UserQuery: q, Limit: ExportBatch}
	for {
		page, err := list(ctx, tx, f)
		if err != nil {
			return err
		}
		for _, u := range page.Users {
			if err := fn(u); err != nil {
				return err
			}
		}
		if !page.More {
			return nil
		}
		p := q.Sort.PositionOf(page.Users[len(page.Users)-1])
		f.After = &p
	}
}
