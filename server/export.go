package server

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"net/http"
	"strconv"
	"time"

	"userapi/gen"
	"userapi/store"
)

// ExportUsers streams every user that matches the query as a CSV or NDJSON
// download.
func (h *Handler) ExportUsers(ctx context.Context, req gen.ExportUsersRequestObject) (gen.ExportUsersResponseObject, error) {
	p := req.Params
	format, err := specDefault(p.Format)
	if err != nil {
		return nil, err
	}
	q, err := h.userQuery(ctx, searchParams{q: p.Q, email: p.Email, createdAfter: p.CreatedAfter, createdBefore: p.CreatedBefore,
		updatedAfter: p.UpdatedAfter, updatedBefore: p.UpdatedBefore, sort: p.Sort, state: p.State, showDeleted: p.ShowDeleted})
	if err != nil {
		return nil, err
	}
	if h.exporter == nil {
		return nil, errors.New("no user exporter configured")
	}
	return exportResponse{ctx: ctx, exporter: h.exporter, query: q, format: format}, nil
}

// exportResponse writes the download as the store reads it. Its headers go
// out with the first user, so that a failure before it (the database down)
// is still an ordinary problem answer.
type exportResponse struct {
	ctx      context.Context
	exporter store.UserExporter
	query    store.UserQuery
	format   gen.ExportFormat
}

func (r exportResponse) VisitExportUsersResponse(w http.ResponseWriter) error {
	buf := bufio.NewWriterSize(w, 32<<10)
	enc := newRowWriter(r.format, buf)
	started := false
	start := func() error {
		started = true
		ext, ctype := "ndjson", "application/x-ndjson"
		if r.format == gen.Csv {
			ext, ctype = "csv", "text/csv; charset=utf-8"
		}
		w.Header().Set("Content-Type", ctype)
		w.Header().Set("Content-Disposition", `attachment; filename="users.`+ext+`"`)
		w.WriteHeader(http.StatusOK)
		return enc.header()
	}
	err := r.exporter.Export(r.ctx, r.query, func(u store.User) error {
		if !started {
			if err := start(); err != nil {
				return err
			}
		}
		return enc.user(u)
	})
	if err == nil && !started {
		err = start()
	}
	if err == nil {
		err = enc.flush()
	}
	if err == nil {
		return buf.Flush()
	}
	if !started {
		return err
	}
	// Half a file must not look like a whole one: break the connection
	// rather than end the response normally (net/http logs nothing for it).
	panic(http.ErrAbortHandler)
}

// rowWriter writes users in one download format.
type rowWriter interface {
	header() error
	user(u store.User) error
	flush() error
}

func newRowWriter(format gen.ExportFormat, w *bufio.Writer) rowWriter {
	if format == gen.Csv {
		c := csv.NewWriter(w)
		c.UseCRLF = true // RFC 4180
		return &csvRows{w: c}
	}
	return &ndjsonRows{w: w}
}

type ndjsonRows struct {
	w   *bufio.Writer
	buf []byte
}

func (n *ndjsonRows) header() error { return nil }

func (n *ndjsonRows) user(u store.User) error {
	n.buf = append(appendUser(n.buf[:0], u), '\n')
	_, err := n.w.Write(n.buf)
	return err
}

func (n *ndjsonRows) flush() error { return nil }

type csvRows struct {
	w   *csv.Writer
	row [6]string
}

func (c *csvRows) header() error {
	return c.w.Write([]string{"id", "name", "email", "created_at", "updated_at", "state"})
}

func (c *csvRows) user(u store.User) error {
	c.row = [6]string{
		strconv.FormatInt(u.ID, 10), spreadsheetText(u.Name), spreadsheetText(u.Email),
		u.CreatedAt.Format(time.RFC3339Nano), u.UpdatedAt.Format(time.RFC3339Nano), string(u.State),
	}
	return c.w.Write(c.row[:])
}

func (c *csvRows) flush() error {
	c.w.Flush()
	return c.w.Error()
}

// spreadsheetText keeps a cell from being read as a formula: Excel and
// LibreOffice run a cell that starts with =, +, -, @, a tab or a carriage
// return, and show one that starts with ' as the text after it (OWASP's
// advice on CSV injection).
func spreadsheetText(s string) string {
	if s != "" {
		switch s[0] {
		case '=', '+', '-', '@', '\t', '\r':
			return "'" + s
		}
	}
	return s
}
