package server

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

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
	secret := ""
	if req.Body.Secret != nil {
		secret = *req.Body.Secret
	} else {
		secret = newSecret()
	}
	events := make([]string, len(req.Body.Events))
	for i, e := range req.Body.Events {
		events[i] = string(e)
	}
	who := callerOf(ctx)
	w, err := h.webhooks.Create(ctx, store.NewWebhook{URL: req.Body.Url, Events: events, Secret: secret, Owner: who.KeyPrefix, MaxPerOwner: h.webhooksPerKey})
	if errors.Is(err, store.ErrTooManyWebhooks) {
		p := newProblem(http.StatusUnprocessableEntity, fmt.Sprintf(
			"the key %s already has %d subscriptions, the most one key may have: delete one before adding another", who.KeyPrefix, h.webhooksPerKey))
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

// newSecret returns 32 random bytes, printable.
func newSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand panics instead)
	return "whsec_" + base64.RawURLEncoding.EncodeToString(b)
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
