package ratelimit_test

import (
	"io"
	"log/slog"

	"github.com/redis/rueidis"
)

func fixed(c rueidis.Client) func() rueidis.Client { return func() rueidis.Client { return c } }

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
