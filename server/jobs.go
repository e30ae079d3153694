package server

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"userapi/auth"
	"userapi/gen"
	"userapi/jobs"
	"userapi/store"
)

// JobService is what the HTTP layer needs from the job queue.
type JobService interface {
	// ProcessUser queues a profile recomputation, or returns the one already
	// pending. Returns store.ErrNotFound if there is no such user.
	ProcessUser(ctx context.Context, userID int64) (jobs.Job, error)
	// Get returns one job. Returns store.ErrNotFound if there is none.
	Get(ctx context.Context, id int64) (jobs.Job, error)
}

// errNoJobs answers for the job routes of a server built without a queue.
var errNoJobs = errors.New("this server has no job queue")

// ProcessUser queues a recomputation of the user's profile: 202 and the job.
func (h *Handler) ProcessUser(ctx context.Context, req gen.ProcessUserRequestObject) (gen.ProcessUserResponseObject, error) {
	if h.jobs == nil {
		return nil, errNoJobs
	}
	j, err := h.jobs.ProcessUser(ctx, req.Id)
	if err != nil {
		return nil, userError(err, req.Id)
	}
	return gen.ProcessUser202JSONResponse{
		Body:    toAPIJob(j),
		Headers: gen.ProcessUser202ResponseHeaders{Location: "/jobs/" + strconv.FormatInt(j.ID, 10)},
	}, nil
}

// GetJob reports a job's state, attempts and errors.
func (h *Handler) GetJob(ctx context.Context, req gen.GetJobRequestObject) (gen.GetJobResponseObject, error) {
	if h.jobs == nil {
		return nil, errNoJobs
	}
	j, err := h.jobs.Get(ctx, req.Id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, withDetail(err, "job %d does not exist", req.Id)
	}
	if err != nil {
		return nil, err
	}
	if needs, ok := jobScopes[j.Kind]; ok && h.auth {
		if who := callerOf(ctx); !auth.Allows(who.Scopes, needs) {
			return nil, insufficientScope(needs, fmt.Sprintf("job %d is a %s job, which only callers with the scope %s may see; %s has %s",
				j.ID, j.Kind, needs, who, scopeList(who.Scopes)))
		}
	}
	return gen.GetJob200JSONResponse{Body: toAPIJob(j)}, nil
}

// jobScopes are the kinds of job that carry another scope's data, and that
// scope. A delivery's errors and timing belong to its subscription, which
// only webhooks:admin may see (GET /webhooks/{id}/deliveries shows the
// same attempts); redacting them instead would leave a job with nothing to
// say.
var jobScopes = map[string]string{
	jobs.DeliverArgs{}.Kind(): auth.ScopeWebhooksAdmin,
}

func toAPIJob(j jobs.Job) gen.Job {
	out := gen.Job{
		Id:          j.ID,
		Kind:        j.Kind,
		State:       gen.JobState(j.State),
		Attempt:     j.Attempt,
		MaxAttempts: j.MaxAttempts,
		CreatedAt:   j.CreatedAt,
		ScheduledAt: j.ScheduledAt,
		FinishedAt:  j.FinishedAt,
		Errors:      make([]gen.JobError, len(j.Errors)),
	}
	for i, e := range j.Errors {
		out.Errors[i] = gen.JobError{Attempt: e.Attempt, At: e.At, Message: e.Message}
	}
	return out
}
