package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"userapi/auth"
	"userapi/gen"
	"userapi/store"
)

// SuspendUser suspends an active user.
func (h *Handler) SuspendUser(ctx context.Context, req gen.SuspendUserRequestObject) (gen.SuspendUserResponseObject, error) {
	u, err := h.transition(ctx, req.Id, store.Suspend, req.Params.IfMatch)
	if err != nil {
		return nil, err
	}
	return gen.SuspendUser200JSONResponse{Body: toAPIUser(u), Headers: gen.SuspendUser200ResponseHeaders{ETag: etag(u)}}, nil
}

// ReactivateUser makes a suspended user active again.
func (h *Handler) ReactivateUser(ctx context.Context, req gen.ReactivateUserRequestObject) (gen.ReactivateUserResponseObject, error) {
	u, err := h.transition(ctx, req.Id, store.Reactivate, req.Params.IfMatch)
	if err != nil {
		return nil, err
	}
	return gen.ReactivateUser200JSONResponse{Body: toAPIUser(u), Headers: gen.ReactivateUser200ResponseHeaders{ETag: etag(u)}}, nil
}

// UndeleteUser restores a deleted user that has not been purged.
func (h *Handler) UndeleteUser(ctx context.Context, req gen.UndeleteUserRequestObject) (gen.UndeleteUserResponseObject, error) {
	u, err := h.transition(ctx, req.Id, store.Undelete, req.Params.IfMatch)
	if err != nil {
		return nil, err
	}
	return gen.UndeleteUser200JSONResponse{Body: toAPIUser(u), Headers: gen.UndeleteUser200ResponseHeaders{ETag: etag(u)}}, nil
}

func (h *Handler) transition(ctx context.Context, id int64, t store.Transition, ifMatchHeader *string) (store.User, error) {
	u, err := h.users.Transition(ctx, id, t, ifMatch(ifMatchHeader))
	var stateErr *store.StateError
	if errors.As(err, &stateErr) {
		p := newProblem(http.StatusConflict, fmt.Sprintf("user %d is %s; %s", id, stateErr.State, appliesTo(t))).typed(gen.ProblemsstateConflict)
		p.cause = err
		return u, p
	}
	return u, userError(err, id)
}

// appliesTo says which users t moves, for a detail.
func appliesTo(t store.Transition) string {
	switch t.Name {
	case store.Suspend.Name:
		return "only an active user can be suspended"
	case store.Reactivate.Name:
		return "only a suspended user can be reactivated (a deleted one is undeleted)"
	case store.Undelete.Name:
		return "only a deleted user can be undeleted"
	}
	return "the change does not apply to it"
}

// needAdmin refuses a request whose parameters ask for what only the
// users:admin scope allows (what names it), when keys are checked.
func (h *Handler) needAdmin(ctx context.Context, what string) error {
	if !h.auth {
		return nil
	}
	who := callerOf(ctx)
	if auth.Allows(who.Scopes, auth.ScopeUsersAdmin) {
		return nil
	}
	return insufficientScope(auth.ScopeUsersAdmin, fmt.Sprintf("%s needs the scope %s; %s has %s",
		what, auth.ScopeUsersAdmin, who, scopeList(who.Scopes)))
}
