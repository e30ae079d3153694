package jobs

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/riverqueue/river"

	"userapi/store"
)

// replayBatch is how many deliveries one insert of a replay queues.
const replayBatch = 500

// Replay queues a delivery to subscription webhookID of every event of its
// types after the event id after (and, with since, that occurred at or
// after it), oldest first, each with the event's own id so that receivers
// drop what they already have. It returns how many it queued. Returns
// store.ErrNotFound if there is no such subscription, and an error that is
// store.ErrGone if the log no longer holds every event after after.
func (q *Queue) Replay(ctx context.Context, webhookID, after int64, since *time.Time) (int, error) {
	hook, err := store.NewWebhooks(q.pool).Get(ctx, webhookID)
	if err != nil {
		return 0, err
	}
	log := store.NewEvents(q.pool)
	queued := 0
	for {
		page, err := log.After(ctx, store.EventFilter{After: after, Types: hook.Events, Since: since, Limit: replayBatch})
		if err != nil {
			return queued, err
		}
		if len(page.Events) > 0 {
			params := make([]river.InsertManyParams, len(page.Events))
			for i, ev := range page.Events {
				args, err := deliverArgs(hook.ID, ev)
				if err != nil {
					return queued, err
				}
				params[i] = river.InsertManyParams{Args: args}
			}
			if _, err := q.client.InsertMany(ctx, params); err != nil {
				return queued, unavailable(fmt.Errorf("queue replayed deliveries: %w", err))
			}
			queued += len(params)
		}
		if len(page.Events) < replayBatch {
			return queued, nil
		}
		after = page.Next
	}
}

// Redeliver queues one more delivery of the event of attempt deliveryID to
// subscription webhookID. Returns store.ErrNotFound if the subscription has
// no such attempt, and store.ErrGone if the log no longer holds its event.
func (q *Queue) Redeliver(ctx context.Context, webhookID, deliveryID int64) error {
	d, err := store.NewWebhooks(q.pool).Delivery(ctx, webhookID, deliveryID)
	if err != nil {
		return err
	}
	id, err := strconv.ParseInt(d.EventID, 10, 64)
	if err != nil {
		// Attempts recorded before the event log named events otherwise.
		return fmt.Errorf("delivery %d names event %q: %w", deliveryID, d.EventID, store.ErrGone)
	}
	ev, err := store.NewEvents(q.pool).Get(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("event %d: %w", id, store.ErrGone)
	}
	if err != nil {
		return err
	}
	args, err := deliverArgs(webhookID, ev)
	if err != nil {
		return err
	}
	if _, err := q.client.Insert(ctx, args, nil); err != nil {
		return unavailable(fmt.Errorf("queue redelivery: %w", err))
	}
	return nil
}
