package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/labstack/echo/v4"

	"userapi/gen"
	"userapi/store"
)

// errNoAudit answers for GET /audit on a server built without the audit log.
var errNoAudit = errors.New("this server has no audit log")

// ListAudit returns a page of the audit log, newest first.
func (h *Handler) ListAudit(ctx context.Context, req gen.ListAuditRequestObject) (gen.ListAuditResponseObject, error) {
	if h.audit == nil {
		return nil, errNoAudit
	}
	limit, err := specDefault(req.Params.Limit)
	if err != nil {
		return nil, err
	}
	f := store.AuditFilter{Limit: limit}
	if req.Params.Actor != nil {
		f.Actor = *req.Params.Actor
	}
	if req.Params.Target != nil {
		f.Target = *req.Params.Target
	}
	if req.Params.After != nil {
		f.After = *req.Params.After
	}
	page, err := h.audit.List(ctx, f)
	if err != nil {
		return nil, err
	}
	out := gen.AuditPage{Items: make([]gen.AuditEntry, len(page.Entries))}
	if page.Next != 0 {
		out.NextAfter = &page.Next
	}
	for i, e := range page.Entries {
		if out.Items[i], err = toAPIAuditEntry(e); err != nil {
			return nil, err
		}
	}
	return gen.ListAudit200JSONResponse{Body: out}, nil
}

func toAPIAuditEntry(e store.AuditEntry) (gen.AuditEntry, error) {
	out := gen.AuditEntry{
		Id: e.ID, OccurredAt: e.OccurredAt, Actor: e.Actor, RequestId: e.RequestID, Action: e.Action, Target: e.Target,
	}
	for _, f := range []struct {
		raw json.RawMessage
		dst **map[string]any
	}{{e.Before, &out.Before}, {e.After, &out.After}} {
		if f.raw == nil {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(f.raw, &m); err != nil {
			return gen.AuditEntry{}, fmt.Errorf("audit entry %d: %w", e.ID, err)
		}
		*f.dst = &m
	}
	return out, nil
}

// auditActor names the request's caller and id to the store, whose changes
// record them in the audit log. It runs once the caller is known, before
// anything that writes.
func auditActor(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		actor := caller(c).ID()
		if actor == "" {
			actor = anonymousActor
		}
		req := c.Request()
		c.SetRequest(req.WithContext(store.WithActor(req.Context(), actor, requestID(c))))
		return next(c)
	}
}

// anonymousActor is the actor of a request without a caller: authentication
// is off (USERAPI_AUTH=off), or the operation is public.
const anonymousActor = "anonymous"
