package server

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"userapi/gen"
	"userapi/store"
)

// ListUsers returns one page of the users that match the query, in its
// order, and how many match when asked.
func (h *Handler) ListUsers(ctx context.Context, req gen.ListUsersRequestObject) (gen.ListUsersResponseObject, error) {
	p := req.Params
	limit, err := specDefault(p.Limit)
	if err != nil {
		return nil, err
	}
	q, err := h.userQuery(ctx, searchParams{q: p.Q, email: p.Email, createdAfter: p.CreatedAfter, createdBefore: p.CreatedBefore,
		updatedAfter: p.UpdatedAfter, updatedBefore: p.UpdatedBefore, sort: p.Sort, state: p.State, showDeleted: p.ShowDeleted})
	if err != nil {
		return nil, err
	}
	f := store.UserFilter{UserQuery: q, Limit: limit, ExactCountWithin: h.exactCountWithin}
	if p.Offset != nil {
		f.Offset = *p.Offset
	}
	if p.Cursor != nil {
		if p.Offset != nil {
			return nil, validation(gen.FieldError{Location: "query.cursor", Message: "cannot be combined with offset"})
		}
		after, why := decodeCursor(q, *p.Cursor)
		if why != "" {
			return nil, validation(gen.FieldError{Location: "query.cursor", Message: why})
		}
		f.After = &after
	}
	if p.Count != nil {
		f.Count = map[gen.UserCountMode]store.UserCount{gen.Estimated: store.CountEstimated, gen.Exact: store.CountExact}[*p.Count]
	}
	page, err := h.users.List(ctx, f)
	if err != nil {
		return nil, err
	}
	out := pageResponse{users: page.Users, total: page.Total}
	if page.More {
		c := encodeCursor(q, q.Sort.PositionOf(page.Users[len(page.Users)-1]))
		out.nextCursor = &c
	}
	return out, nil
}

// CreateUser stores a new user.
func (h *Handler) CreateUser(ctx context.Context, req gen.CreateUserRequestObject) (gen.CreateUserResponseObject, error) {
	u, err := h.users.Create(ctx, store.NewUser{Name: req.Body.Name, Email: req.Body.Email})
	if err != nil {
		return nil, userError(err, 0)
	}
	return gen.CreateUser201JSONResponse{
		Body:    toAPIUser(u),
		Headers: gen.CreateUser201ResponseHeaders{Location: "/users/" + strconv.FormatInt(u.ID, 10), ETag: etag(u)},
	}, nil
}

// GetUser returns one user, or 304 when the caller's ETag still matches.
func (h *Handler) GetUser(ctx context.Context, req gen.GetUserRequestObject) (gen.GetUserResponseObject, error) {
	showDeleted := req.Params.ShowDeleted != nil && *req.Params.ShowDeleted
	if showDeleted {
		if err := h.needAdmin(ctx, "show_deleted=true"); err != nil {
			return nil, err
		}
	}
	u, err := h.users.Get(ctx, req.Id)
	if err == nil {
		err = u.Visible(showDeleted)
	}
	if err != nil {
		return nil, userError(err, req.Id)
	}
	if req.Params.IfNoneMatch != nil && etagMatches(*req.Params.IfNoneMatch, u.Version) {
		return gen.GetUser304Response{Headers: gen.GetUser304ResponseHeaders{ETag: etag(u)}}, nil
	}
	return userResponse{enc: h.encoded.of(u)}, nil
}

// ReplaceUser sets both editable fields.
func (h *Handler) ReplaceUser(ctx context.Context, req gen.ReplaceUserRequestObject) (gen.ReplaceUserResponseObject, error) {
	c := store.UserChange{Name: &req.Body.Name, Email: &req.Body.Email, IfVersion: ifMatch(req.Params.IfMatch)}
	u, err := h.users.Update(ctx, req.Id, c)
	if err != nil {
		return nil, userError(err, req.Id)
	}
	return gen.ReplaceUser200JSONResponse{Body: toAPIUser(u), Headers: gen.ReplaceUser200ResponseHeaders{ETag: etag(u)}}, nil
}

// UpdateUser sets the fields present in the body and keeps the others.
func (h *Handler) UpdateUser(ctx context.Context, req gen.UpdateUserRequestObject) (gen.UpdateUserResponseObject, error) {
	c := store.UserChange{Name: req.Body.Name, Email: req.Body.Email, IfVersion: ifMatch(req.Params.IfMatch)}
	u, err := h.users.Update(ctx, req.Id, c)
	if err != nil {
		return nil, userError(err, req.Id)
	}
	return gen.UpdateUser200JSONResponse{Body: toAPIUser(u), Headers: gen.UpdateUser200ResponseHeaders{ETag: etag(u)}}, nil
}

// DeleteUser soft-deletes a user, or with purge=true erases it, if it still
// has the version If-Match names.
func (h *Handler) DeleteUser(ctx context.Context, req gen.DeleteUserRequestObject) (gen.DeleteUserResponseObject, error) {
	var err error
	if req.Params.Purge != nil && *req.Params.Purge {
		if err := h.needAdmin(ctx, "purge=true"); err != nil {
			return nil, err
		}
		err = h.users.Purge(ctx, req.Id, ifMatch(req.Params.IfMatch))
	} else {
		err = h.users.Delete(ctx, req.Id, ifMatch(req.Params.IfMatch))
	}
	if err != nil {
		return nil, userError(err, req.Id)
	}
	return gen.DeleteUser204Response{}, nil
}

// userError gives the store's errors a detail that names the user.
func userError(err error, id int64) error {
	var stateErr *store.StateError
	var deletedEmail *store.DeletedEmailError
	switch {
	case errors.Is(err, store.ErrUserDeleted):
		return withDetail(err, "user %d is deleted; undelete it (POST /users/%d/undelete) to see or change it", id, id)
	case errors.Is(err, store.ErrNotFound):
		return withDetail(err, "user %d does not exist", id)
	case errors.As(err, &stateErr) && stateErr.State == store.StateSuspended:
		p := newProblem(http.StatusConflict, fmt.Sprintf("user %d is suspended; reactivate it (POST /users/%d/reactivate) before changing it", id, id)).typed(gen.ProblemsuserSuspended)
		p.cause = err
		return p
	case errors.As(err, &deletedEmail):
		p := newProblem(http.StatusConflict, fmt.Sprintf("this email address belongs to deleted user %d, who can be undeleted (POST /users/%d/undelete) until purged",
			deletedEmail.UserID, deletedEmail.UserID)).typed(gen.ProblemsemailTaken)
		p.Errors = &[]gen.FieldError{{Location: "body.email", Message: "belongs to a deleted user"}}
		p.cause = err
		return p
	case errors.Is(err, store.ErrConflict):
		// Named at body.email too, so that a form shows it beside the field.
		p := newProblem(http.StatusConflict, "a user with this email address already exists").typed(gen.ProblemsemailTaken)
		p.Errors = &[]gen.FieldError{{Location: "body.email", Message: "is already taken by another user"}}
		p.cause = err
		return p
	case errors.Is(err, store.ErrPrecondition):
		return withDetail(err, "user %d has changed since the ETag given in If-Match", id)
	}
	return err
}

func toAPIUser(u store.User) gen.User {
	return gen.User{
		Id:        u.ID,
		Name:      u.Name,
		Email:     u.Email,
		Etag:      etag(u),
		State:     gen.UserState(u.State),
		DeletedAt: u.DeletedAt,
		CreatedAt: u.CreatedAt,
		UpdatedAt: u.UpdatedAt,
	}
}

// etag is a user's strong entity tag: its version, quoted.
func etag(u store.User) string {
	return `"` + strconv.FormatInt(u.Version, 10) + `"`
}

// etagMatches reports whether a list of entity tags (If-Match or
// If-None-Match) names this version. "*" matches any version. Weak tags
// compare by their opaque part, as If-None-Match's weak comparison asks.
func etagMatches(header string, version int64) bool {
	want := strconv.FormatInt(version, 10)
	for _, tag := range strings.Split(header, ",") {
		tag = strings.TrimSpace(tag)
		if tag == "*" {
			return true
		}
		tag = strings.TrimPrefix(tag, "W/")
		if len(tag) >= 2 && tag[0] == '"' && tag[len(tag)-1] == '"' && tag[1:len(tag)-1] == want {
			return true
		}
	}
	return false
}

// ifMatch turns an If-Match header into the store's version check; no header
// means no check.
func ifMatch(header *string) func(int64) bool {
	if header == nil {
		return nil
	}
	h := *header
	return func(version int64) bool { return strongMatch(h, version) }
}

// strongMatch is etagMatches without weak tags: If-Match uses the strong
// comparison (RFC 9110, 13.1.1).
func strongMatch(header string, version int64) bool {
	for _, tag := range strings.Split(header, ",") {
		if strings.HasPrefix(strings.TrimSpace(tag), "W/") {
			continue
		}
		if etagMatches(tag, version) {
			return true
		}
	}
	return false
}

// Cursors of earlier versions were the last id of the page; see legacyCursor.
const cursorPrefix = "after:"

func decodeIDCursor(s string) (int64, bool) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return 0, false
	}
	rest, ok := strings.CutPrefix(string(raw), cursorPrefix)
	if !ok {
		return 0, false
	}
	id, err := strconv.ParseInt(rest, 10, 64)
	if err != nil || id < 1 {
		return 0, false
	}
	return id, true
}

// validation is a 422 raised by a handler for rules the spec cannot express.
func validation(fields ...gen.FieldError) error {
	p := newProblem(http.StatusUnprocessableEntity, validationDetail(fields))
	p.Errors = &fields
	return p
}

// BatchGetUsers returns many users at once, in the order asked for.
func (h *Handler) BatchGetUsers(ctx context.Context, req gen.BatchGetUsersRequestObject) (gen.BatchGetUsersResponseObject, error) {
	ids := make([]int64, 0, len(req.Body.Ids))
	seen := make(map[int64]bool, len(req.Body.Ids))
	for _, id := range req.Body.Ids {
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	users, err := h.users.GetMany(ctx, ids)
	if err != nil {
		return nil, err
	}
	byID := make(map[int64]store.User, len(users))
	for _, u := range users {
		if u.Visible(false) == nil {
			byID[u.ID] = u
		}
	}
	out := batchResponse{users: make([]store.User, 0, len(users))}
	for _, id := range ids {
		if u, ok := byID[id]; ok {
			out.users = append(out.users, u)
		} else {
			out.missing = append(out.missing, id)
		}
	}
	return out, nil
}
