package jobs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"userapi/store"
	"userapi/webhook"
)

// DeliverArgs asks for one event to be delivered to one subscription.
type DeliverArgs struct {
	WebhookID int64 `json:"webhook_id"`
	// EventID is the event's id in the log: the same on every attempt, for
	// every subscriber and in replays, so receivers deduplicate by it.
	EventID int64 `json:"event_id"`
	// Event is the body sent: the event as the log holds it (store.Event),
	// so a delivery does not depend on the log still keeping it. Kept as
	// JSON, as deliveries queued before the log carry an older shape.
	Event json.RawMessage `json:"event"`
}

// deliverArgs asks for ev to be delivered to subscription webhookID.
func deliverArgs(webhookID int64, ev store.Event) (DeliverArgs, error) {
	body, err := json.Marshal(ev)
	return DeliverArgs{WebhookID: webhookID, EventID: ev.ID, Event: body}, err
}

// eventOf is the id and type of the event a delivery carries. Deliveries
// queued before the event log have no EventID: theirs is in the body.
func (a DeliverArgs) eventOf() (id, typ string) {
	var head struct {
		ID   json.RawMessage `json:"id"`
		Type string          `json:"type"`
	}
	_ = json.Unmarshal(a.Event, &head)
	if a.EventID != 0 {
		return strconv.FormatInt(a.EventID, 10), head.Type
	}
	return strings.Trim(string(head.ID), `"`), head.Type
}

// Kind names the job in River's table.
func (DeliverArgs) Kind() string { return "webhook_deliver" }

// InsertOpts put deliveries in their own queue.
func (DeliverArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{Queue: QueueWebhooks} }

// UserHook returns the store hook that queues, inside the user change's
// transaction, one delivery of its event per subscription to its type. A
// change nobody subscribes to has nothing to queue: give it to the store
// with WithSubscriberHook.
func (q *Queue) UserHook() store.UserHook {
	return func(ctx context.Context, tx pgx.Tx, ev store.UserEvent) error {
		ids := ev.Subscribers
		if ids == nil { // a change that did not look them up with its event
			var err error
			if ids, err = store.NewWebhooks(tx).Subscribers(ctx, ev.Type); err != nil {
				return err
			}
		}
		if len(ids) == 0 {
			return nil
		}
		params := make([]river.InsertManyParams, len(ids))
		for i, id := range ids {
			args, err := deliverArgs(id, ev.Event)
			if err != nil {
				return err
			}
			params[i] = river.InsertManyParams{Args: args}
		}
		if _, err := q.client.InsertManyTx(ctx, tx, params); err != nil {
			return fmt.Errorf("queue %s deliveries: %w", ev.Type, err)
		}
		return nil
	}
}

type deliverWorker struct {
	river.WorkerDefaults[DeliverArgs]
	webhooks *store.Webhooks
	client   *webhook.Client
	timeout  time.Duration
	logger   *slog.Logger
	observe  func(DeliveryOutcome) // nil: nobody is told
	inFlight *perKey               // deliveries under way, per subscription
}

// perKey counts what is under way per key, up to a limit per key.
type perKey struct {
	limit int
	mu    sync.Mutex
	n     map[int64]int
}

// acquire takes one of key's slots, or says there is none free.
func (p *perKey) acquire(key int64) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.n[key] >= p.limit {
		return false
	}
	p.n[key]++
	return true
}

func (p *perKey) release(key int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.n[key]--; p.n[key] <= 0 {
		delete(p.n, key)
	}
}

// snoozeFor is how long a delivery waits when its subscription has no free
// slot: about half an attempt's longest time, jittered so that the waiting
// deliveries do not all come back together.
func (w *deliverWorker) snoozeFor() time.Duration {
	half := w.timeout / 2
	return half + time.Duration(rand.Int64N(int64(half)+1))
}

// DeliveryOutcome is what became of one delivery attempt.
type DeliveryOutcome string

// The outcomes of a delivery attempt.
const (
	DeliverySuccess DeliveryOutcome = "success" // the receiver answered 2xx
	DeliveryRetry   DeliveryOutcome = "retry"   // failed, and will be tried again
	DeliveryFailed  DeliveryOutcome = "failed"  // failed, and given up on
)

// Timeout leaves the HTTP client's own timeout room to fire first, so that
// the attempt is recorded with its real cause.
func (w *deliverWorker) Timeout(*river.Job[DeliverArgs]) time.Duration {
	return w.timeout + 5*time.Second
}

func (w *deliverWorker) Work(ctx context.Context, job *river.Job[DeliverArgs]) error {
	// A slow receiver must not take every worker, or everyone else's
	// deliveries wait for it: past its share, its deliveries step aside
	// (a snooze is no attempt) and the worker takes the next job.
	if !w.inFlight.acquire(job.Args.WebhookID) {
		return river.JobSnooze(w.snoozeFor())
	}
	defer w.inFlight.release(job.Args.WebhookID)
	hook, err := w.webhooks.Get(ctx, job.Args.WebhookID)
	if errors.Is(err, store.ErrNotFound) {
		return nil // unsubscribed since: drop the event
	}
	if err != nil {
		return err
	}
	// River keeps args as jsonb, which spaces them out: send them compact.
	var compact bytes.Buffer
	if err := json.Compact(&compact, job.Args.Event); err != nil {
		return river.JobCancel(err)
	}
	body := compact.Bytes()
	eventID, eventType := job.Args.eventOf()
	d := store.Delivery{WebhookID: hook.ID, EventID: eventID, EventType: eventType, Attempt: job.Attempt}
	msg := webhook.Message{ID: eventID, Body: body, Secrets: hook.SigningSecrets(time.Now())}
	retry, err := w.send(ctx, hook, msg, &d)
	if err != nil {
		d.Error = err.Error()
	}
	// The log is for people: losing a line of it must not cause a
	// redelivery, so a failure to record is only logged.
	if rerr := w.webhooks.RecordDelivery(context.WithoutCancel(ctx), d); rerr != nil {
		w.logger.WarnContext(ctx, "webhook: record delivery", "webhook_id", hook.ID, "error", rerr.Error())
	}
	if w.observe != nil {
		switch {
		case err == nil:
			w.observe(DeliverySuccess)
		case retry && job.Attempt < job.MaxAttempts: // after the last, River discards it
			w.observe(DeliveryRetry)
		default:
			w.observe(DeliveryFailed)
		}
	}
	switch {
	case err == nil:
		return nil
	case retry:
		return err
	default:
		return river.JobCancel(err)
	}
}

// send makes one delivery attempt and fills in d's status and latency. It
// says whether a failure is worth retrying: network errors, timeouts, 5xx,
// 408 and 429 are; other answers mean the receiver will not take it, and a
// blocked address stays blocked.
func (w *deliverWorker) send(ctx context.Context, hook store.Webhook, msg webhook.Message, d *store.Delivery) (retry bool, err error) {
	res, err := w.client.Send(ctx, hook.URL, msg)
	d.Latency, d.StatusCode = res.Latency, res.StatusCode
	var failed *webhook.Failure
	switch {
	case errors.As(err, &failed):
		w.logger.InfoContext(ctx, "webhook: delivery failed", "webhook_id", hook.ID, "failure", failed.Reason, "error", failed.Err.Error())
		return failed.Reason != webhook.FailureBlocked, failed
	case err != nil:
		return false, err
	}
	switch c := res.StatusCode; {
	case c >= 200 && c < 300:
		return false, nil
	case c >= 500, c == http.StatusRequestTimeout, c == http.StatusTooManyRequests:
		return true, fmt.Errorf("http status %d", c)
	default:
		return false, fmt.Errorf("http status %d", c)
	}
}
