package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"userapi/store/internal/dbsqlc"
)

// Event is one change in the event log. Its JSON form is the Event schema
// of openapi.yaml: webhook payloads, GET /events and the live stream all
// send it as it is.
type Event struct {
	// ID grows with every event, in the order readers see them (see
	// Events.After); ids are not consecutive.
	ID         int64     `json:"id"`
	Type       string    `json:"type"`
	OccurredAt time.Time `json:"occurred_at"`
	UserID     int64     `json:"user_id"`
	// Data is the user after the change, as the API shows users. Events
	// of a purged user, the UserPurged one included, have none.
	Data json.RawMessage `json:"data,omitempty"`
	// Changed names the fields an update changed; nil for other types.
	Changed []string `json:"changed,omitempty"`
}

// EventsChannel is the NOTIFY channel that wakes the readers of the log.
const EventsChannel = "events"

// ErrGone means what was asked for is no longer kept.
var ErrGone = errors.New("gone")

// TrimmedError is why a read after an id the retention job has passed
// fails: events after that id have been deleted. It is ErrGone.
type TrimmedError struct {
	// Start is the id the log now starts after: read from there.
	Start int64
}

func (e *TrimmedError) Error() string {
	return fmt.Sprintf("the event log starts after event %d", e.Start)
}

func (e *TrimmedError) Is(target error) bool { return target == ErrGone }

// EventFilter selects events.
type EventFilter struct {
	// After is the id to read after: 0 for the start of the log.
	After int64
	// Types, when not empty, keeps only events of these types.
	Types []string
	// UserID, when not nil, keeps only this user's events.
	UserID *int64
	// Since, when not nil, keeps only the events that occurred at or
	// after it.
	Since *time.Time
	// Limit is the most events returned, at least 1.
	Limit int
}

// EventPage is a read of the log.
type EventPage struct {
	Events []Event
	// Next is the After of the next read: the last event's id when the page
	// is full, otherwise the highest id below which every event that will
	// ever exist has been read (the filter's, at least After).
	Next int64
}

// EventLog is what readers need from the event log.
type EventLog interface {
	// After returns events after f.After in id order. Returns a
	// *TrimmedError (ErrGone) if the log no longer holds all of them.
	After(ctx context.Context, f EventFilter) (EventPage, error)
	// Get returns one event. Returns ErrNotFound if there is none, or
	// readers may not see it yet.
	Get(ctx context.Context, id int64) (Event, error)
}

// Events is the PostgreSQL event log.
type Events struct {
	pool *pgxpool.Pool
	q    *dbsqlc.Queries
	listener
}

var _ EventLog = (*Events)(nil)

// NewEvents returns the log read through pool.
func NewEvents(pool *pgxpool.Pool) *Events {
	return &Events{pool: pool, q: dbsqlc.New(pool)}
}

// After returns up to f.Limit events after f.After, oldest first. It is
// the one read of the log that every consumer makes (GET /events, the
// stream, webhook replays), and the one place its ordering rule lives:
// an event is returned only once every transaction that could still write
// a lower id has ended, so a reader that continues from the last id it got
// never skips an event whose transaction committed late.
func (s *Events) After(ctx context.Context, f EventFilter) (_ EventPage, err error) {
	defer wrap(&err, "Events.After(%d)", f.After)
	params := dbsqlc.EventsAfterParams{After: f.After, Types: f.Types, RowLimit: int64(max(f.Limit, 1))}
	if params.Types == nil {
		params.Types = []string{}
	}
	if f.UserID != nil {
		params.UserID = pgtype.Int8{Int64: *f.UserID, Valid: true}
	}
	if f.Since != nil {
		params.Since = pgtype.Timestamptz{Time: *f.Since, Valid: true}
	}
	rows, err := s.q.EventsAfter(ctx, params)
	if err != nil {
		return EventPage{}, translate(err)
	}
	page := EventPage{Next: f.After}
	if len(rows) == 0 {
		return page, nil // cannot happen: the horizon row is always there
	}
	// From the start (0), a reader gets what is kept; from an id the
	// retention job has passed, it would silently miss what was deleted.
	if start := rows[0].LogStart; f.After > 0 && f.After < start {
		return EventPage{}, &TrimmedError{Start: start}
	}
	for _, r := range rows {
		if !r.ID.Valid {
			break
		}
		page.Events = append(page.Events, Event{
			ID: r.ID.Int64, Type: r.Type.String, OccurredAt: r.OccurredAt.Time.UTC(),
			UserID: r.UserID.Int64, Data: r.Data, Changed: r.Changed,
		})
	}
	switch {
	case len(page.Events) == int(params.RowLimit):
		page.Next = page.Events[len(page.Events)-1].ID
	default:
		page.Next = max(f.After, rows[0].Horizon-1)
	}
	return page, nil
}

// End returns the id up to which every event that will ever exist is
// visible now: a reader that has read up to it has missed nothing.
func (s *Events) End(ctx context.Context) (_ int64, err error) {
	defer wrap(&err, "Events.End")
	end, err := s.q.EventsEnd(ctx)
	return end, translate(err)
}

// Get returns one event. Returns ErrNotFound if there is none, or readers
// may not see it yet.
func (s *Events) Get(ctx context.Context, id int64) (_ Event, err error) {
	defer wrap(&err, "Events.Get(%d)", id)
	r, err := s.q.EventGet(ctx, id)
	if err != nil {
		return Event{}, translate(err)
	}
	return Event{ID: r.ID, Type: r.Type, OccurredAt: r.OccurredAt.UTC(), UserID: r.UserID, Data: r.Data, Changed: r.Changed}, nil
}

// Trim deletes up to limit of the oldest events among those up to the last
// one that occurred more than retention ago, and returns how many it
// deleted. Readers behind them then get a *TrimmedError.
func (s *Events) Trim(ctx context.Context, retention time.Duration, limit int64) (_ int64, err error) {
	defer wrap(&err, "Events.Trim")
	n, err := s.q.EventsTrim(ctx, dbsqlc.EventsTrimParams{RetentionSeconds: retention.Seconds(), RowLimit: limit})
	return n, translate(err)
}

// Notify wakes every process listening for the log, in a transaction of
// its own. Writers call it after their commit, not in it: a NOTIFY makes
// PostgreSQL commit notifying transactions one at a time, which would
// hold every write behind the previous one's disk flush.
func (s *Events) Notify(ctx context.Context) (err error) {
	defer wrap(&err, "Events.Notify")
	_, err = s.pool.Exec(ctx, "SELECT pg_notify($1, '')", EventsChannel)
	return translate(err)
}

// Listen calls wake whenever a process notifies of new events, and after
// each (re)connection, since notifications sent while disconnected are
// lost. It holds one connection of its own for the whole process (LISTEN
// needs a session, which a pool would hand to others), connects again
// after a failure, and returns when ctx ends.
func (s *Events) Listen(ctx context.Context, wake func()) {
	s.listen(ctx, s.pool, EventsChannel, wake)
}

// eventData is a user as events carry it: the API's User.
type eventData struct {
	ID        int64      `json:"id"`
	Name      string     `json:"name"`
	Email     string     `json:"email"`
	State     UserState  `json:"state"`
	DeletedAt *time.Time `json:"deleted_at,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	UpdatedAt time.Time  `json:"updated_at"`
}

// recordChange writes ev to the log and its audit entry in q's transaction,
// sets its ID and Data, and its Subscribers as the transaction sees them:
// one statement, so one round trip. A purge's event carries no data: the
// user's is what was erased.
func recordChange(ctx context.Context, q *dbsqlc.Queries, ev *UserEvent) error {
	u := ev.User
	var data []byte
	if ev.Type != UserPurged {
		var err error
		if data, err = eventJSON(u); err != nil {
			return err
		}
	}
	ev.Data, ev.UserID, ev.OccurredAt = data, u.ID, ev.OccurredAt.UTC()
	before, after, err := userDiff(*ev).encode()
	if err != nil {
		return err
	}
	who := actorOf(ctx)
	row, err := q.EventRecord(ctx, dbsqlc.EventRecordParams{
		Type: ev.Type, OccurredAt: ev.OccurredAt, UserID: u.ID, Data: data, Changed: ev.Changed,
		Actor: who.actor, RequestID: who.requestID, Target: UserTarget(u.ID), Before: before, After: after,
	})
	if err != nil {
		return err
	}
	return ev.recorded(row.EventID, row.Subscribers)
}

// recorded sets what the statement that logged ev returned.
func (ev *UserEvent) recorded(id int64, subscribers []int64) error {
	if id == 0 {
		return errors.New("more than 65536 events in one transaction")
	}
	if subscribers == nil {
		subscribers = []int64{} // looked up, and none: not the hook's to look up again
	}
	ev.ID, ev.Subscribers = id, subscribers
	return nil
}

// eventJSON is u as an event's data.
func eventJSON(u User) ([]byte, error) {
	return json.Marshal(eventData{ID: u.ID, Name: u.Name, Email: u.Email, State: u.State, DeletedAt: u.DeletedAt, CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt})
}
