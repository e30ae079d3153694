package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"

	"userapi/gen"
	"userapi/store"
	"userapi/webhook"
)

// errNoWebhooks answers for the webhook routes of a server built without a
// subscription store.
var errNoWebhooks = errors.New("this server has no webhook store")

// CreateWebhook subscribes a URL to user events, generating a secret when
// none is given. The secret is in this answer only.
func (h *Handler) CreateWebhook(ctx context.Context, req gen.CreateWebhookRequestObject) (gen.CreateWebhookResponseObject, error) {
	if h.webhooks == nil {
		return nil, errNoWebhooks
	}
	if err := webhook.CheckURL(req.Body.Url, h.allowPrivate); err != nil {
		return nil, validation(gen.FieldError{Location: "body.url", Message: err.Error()})
	}
	secret := webhook.NewSecret()
	if req.Body.Secret != nil {
		if err := webhook.CheckSecret(*req.Body.Secret); err != nil {
			return nil, validation(gen.FieldError{Location: "body.secret", Message: err.Error()})
		}
		secret = *req.Body.Secret
	}
	events := make([]string, len(req.Body.Events))
	for i, e := range req.Body.Events {
		events[i] = string(e)
	}
	who := callerOf(ctx)
	w, err := h.webhooks.Create(ctx, store.NewWebhook{URL: req.Body.Url, Events: events, Secret: secret, Owner: who.ID(), MaxPerOwner: h.webhooksPerKey})
	if errors.Is(err, store.ErrTooManyWebhooks) {
		p := newProblem(http.StatusUnprocessableEntity, fmt.Sprintf(
			"%s already has %d subscriptions, the most one caller may have: delete one before adding another", who, h.webhooksPerKey)).
			typed(gen.ProblemstooManyWebhooks)
		p.cause = err
		return nil, p
	}
	if err != nil {
		return nil, err
	}
	api := toAPIWebhook(w)
	return gen.CreateWebhook201JSONResponse{
		Body: gen.WebhookWithSecret{Id: api.Id, Url: api.Url, Events: api.Events, CreatedAt: api.CreatedAt, Secret: w.Secret},
		Headers: gen.CreateWebhook201ResponseHeaders{
			Location: "/webhooks/" + strconv.FormatInt(w.ID, 10),
		},
	}, nil
}

// ListWebhooks returns every subscription.
func (h *Handler) ListWebhooks(ctx context.Context, _ gen.ListWebhooksRequestObject) (gen.ListWebhooksResponseObject, error) {
	if h.webhooks == nil {
		return nil, errNoWebhooks
	}
	list, err := h.webhooks.List(ctx)
	if err != nil {
		return nil, err
	}
	out := gen.WebhookList{Items: make([]gen.Webhook, len(list))}
	for i, w := range list {
		out.Items[i] = toAPIWebhook(w)
	}
	return gen.ListWebhooks200JSONResponse{Body: out}, nil
}

// GetWebhook returns one subscription, without its secret.
func (h *Handler) GetWebhook(ctx context.Context, req gen.GetWebhookRequestObject) (gen.GetWebhookResponseObject, error) {
	if h.webhooks == nil {
		return nil, errNoWebhooks
	}
	w, err := h.webhooks.Get(ctx, req.Id)
	if err != nil {
		return nil, webhookError(err, req.Id)
	}
	return gen.GetWebhook200JSONResponse{Body: toAPIWebhook(w)}, nil
}

// DeleteWebhook unsubscribes.
func (h *Handler) DeleteWebhook(ctx context.Context, req gen.DeleteWebhookRequestObject) (gen.DeleteWebhookResponseObject, error) {
	if h.webhooks == nil {
		return nil, errNoWebhooks
	}
	if err := h.webhooks.Delete(ctx, req.Id); err != nil {
		return nil, webhookError(err, req.Id)
	}
	return gen.DeleteWebhook204Response{}, nil
}

// ListWebhookDeliveries returns the subscription's latest delivery attempts.
func (h *Handler) ListWebhookDeliveries(ctx context.Context, req gen.ListWebhookDeliveriesRequestObject) (gen.ListWebhookDeliveriesResponseObject, error) {
	if h.webhooks == nil {
		return nil, errNoWebhooks
	}
	limit, err := specDefault(req.Params.Limit)
	if err != nil {
		return nil, err
	}
	list, err := h.webhooks.Deliveries(ctx, req.Id, limit)
	if err != nil {
		return nil, webhookError(err, req.Id)
	}
	out := gen.DeliveryList{Items: make([]gen.Delivery, len(list))}
	for i, d := range list {
		item := gen.Delivery{
			Id:          d.ID,
			EventId:     d.EventID,
			EventType:   gen.EventType(d.EventType),
			Attempt:     d.Attempt,
			LatencyMs:   float64(d.Latency.Microseconds()) / 1000,
			DeliveredAt: d.DeliveredAt,
		}
		if d.StatusCode != 0 {
			item.StatusCode = &d.StatusCode
		}
		if d.Error != "" {
			item.Error = &d.Error
		}
		out.Items[i] = item
	}
	return gen.ListWebhookDeliveries200JSONResponse{Body: out}, nil
}

// RotateWebhookSecret gives the subscription a new secret; the old one
// keeps signing beside it for the rotation overlap.
func (h *Handler) RotateWebhookSecret(ctx context.Context, req gen.RotateWebhookSecretRequestObject) (gen.RotateWebhookSecretResponseObject, error) {
	if h.webhooks == nil {
		return nil, errNoWebhooks
	}
	until := time.Now().Add(h.rotationOverlap).UTC().Truncate(time.Microsecond) // as PostgreSQL keeps it
	w, err := h.webhooks.RotateSecret(ctx, req.Id, webhook.NewSecret(), until)
	if err != nil {
		return nil, webhookError(err, req.Id)
	}
	return gen.RotateWebhookSecret200JSONResponse{Body: gen.WebhookSecret{Secret: w.Secret, PreviousSecretExpiresAt: until}}, nil
}

// TestWebhook sends a ping event to the subscription now, signed as
// deliveries are, and reports the receiver's answer.
func (h *Handler) TestWebhook(ctx context.Context, req gen.TestWebhookRequestObject) (gen.TestWebhookResponseObject, error) {
	if h.webhooks == nil {
		return nil, errNoWebhooks
	}
	w, err := h.webhooks.Get(ctx, req.Id)
	if err != nil {
		return nil, webhookError(err, req.Id)
	}
	now := time.Now()
	// A ping is shaped like an event; its id is a string, so that it can
	// never be taken for one of the log's.
	ping := struct {
		ID         string          `json:"id"`
		Type       string          `json:"type"`
		OccurredAt time.Time       `json:"occurred_at"`
		Data       json.RawMessage `json:"data"`
	}{ID: "ping_" + uuid.NewString(), Type: "ping", OccurredAt: now.UTC(), Data: fmt.Appendf(nil, `{"webhook_id":%d}`, w.ID)}
	body, err := json.Marshal(ping)
	if err != nil {
		return nil, err
	}
	res, err := h.sender.Send(ctx, w.URL, webhook.Message{ID: ping.ID, Body: body, Secrets: w.SigningSecrets(now)})
	var failed *webhook.Failure
	if errors.As(err, &failed) {
		status := http.StatusBadGateway
		switch failed.Reason {
		case webhook.FailureTimeout:
			status = http.StatusGatewayTimeout
		case webhook.FailureBlocked:
			status = http.StatusUnprocessableEntity
		}
		p := newProblem(status, fmt.Sprintf("the test event to webhook %d got no answer: %s", w.ID, failed.Reason))
		p.cause = failed.Err
		return nil, p
	}
	if err != nil {
		return nil, err
	}
	return gen.TestWebhook200JSONResponse{Body: gen.WebhookTestResult{
		MessageId:  ping.ID,
		StatusCode: res.StatusCode,
		Success:    res.StatusCode >= 200 && res.StatusCode < 300,
		LatencyMs:  float64(res.Latency.Microseconds()) / 1000,
	}}, nil
}

func webhookError(err error, id int64) error {
	if errors.Is(err, store.ErrNotFound) {
		return withDetail(err, "webhook %d does not exist", id)
	}
	return err
}

func toAPIWebhook(w store.Webhook) gen.Webhook {
	events := make([]gen.EventType, len(w.Events))
	for i, e := range w.Events {
		events[i] = gen.EventType(e)
	}
	return gen.Webhook{Id: w.ID, Url: w.URL, Events: events, CreatedAt: w.CreatedAt}
}

// Replayer queues deliveries of past events (see jobs.Queue).
type Replayer interface {
	// Replay queues every event after the id after (or since a time) for a
	// subscription; see jobs.Queue.Replay.
	Replay(ctx context.Context, webhookID, after int64, since *time.Time) (int, error)
	// Redeliver queues the event of one delivery attempt again.
	Redeliver(ctx context.Context, webhookID, deliveryID int64) error
}

// ReplayWebhook queues past events for a subscription again.
func (h *Handler) ReplayWebhook(ctx context.Context, req gen.ReplayWebhookRequestObject) (gen.ReplayWebhookResponseObject, error) {
	if h.replayer == nil {
		return nil, errNoWebhooks
	}
	var after int64
	if req.Body.After != nil {
		after = *req.Body.After
	}
	n, err := h.replayer.Replay(ctx, req.Id, after, req.Body.Since)
	if err != nil {
		return nil, eventsError(webhookError(err, req.Id), after)
	}
	return gen.ReplayWebhook202JSONResponse{Body: gen.Replay{Queued: n}}, nil
}

// RetryWebhookDelivery queues the event of one delivery attempt again.
func (h *Handler) RetryWebhookDelivery(ctx context.Context, req gen.RetryWebhookDeliveryRequestObject) (gen.RetryWebhookDeliveryResponseObject, error) {
	if h.replayer == nil {
		return nil, errNoWebhooks
	}
	err := h.replayer.Redeliver(ctx, req.Id, req.DeliveryId)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, withDetail(err, "webhook %d has no delivery %d", req.Id, req.DeliveryId)
	case errors.Is(err, store.ErrGone):
		return nil, withDetail(err, "the event of delivery %d is no longer kept", req.DeliveryId)
	case err != nil:
		return nil, err
	}
	return gen.RetryWebhookDelivery202JSONResponse{Body: gen.Replay{Queued: 1}}, nil
}
