package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
)

// fanoutName is the live feed's scenario in the results and for -run.
const fanoutName = "GET /events/stream fan-out"

// fanoutOpening is how many streams are being opened at once: each opening
// reads the log once, and all at once would only queue for connections.
const fanoutOpening = 32

type fanoutResult struct {
	streams, events    int
	deliveries         int // events that arrived, summed over streams
	p50, p99, max      time.Duration
	rssBefore, rssOpen int64 // the server's RSS before opening the streams and with them open
}

// perStream is the server's memory per open stream.
func (f fanoutResult) perStream() int64 { return (f.rssOpen - f.rssBefore) / int64(f.streams) }

// missing is how many deliveries did not arrive.
func (f fanoutResult) missing() int { return f.streams*f.events - f.deliveries }

// fanout opens streams live streams on one instance, reads its RSS, then
// creates events users one by one through the API, pacing them at interval,
// and times each event's arrival on every stream from its occurred_at: the
// writing transaction's clock, which reads before it commits, so the
// figures are upper bounds on commit to delivery.
func fanout(addr, key string, pid, streams, events int, interval time.Duration) (fanoutResult, error) {
	res := fanoutResult{streams: streams, events: events}
	status := fmt.Sprintf("/proc/%d/status", pid)
	var err error
	if res.rssBefore, err = procStatus(status, "VmRSS"); err != nil {
		return res, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// A transport of its own: one connection per stream, none pooled.
	client := &http.Client{Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: -1}}
	defer client.CloseIdleConnections()

	type arrival struct {
		id int64
		at time.Time
	}
	arrivals := make([][]arrival, streams)
	var complete atomic.Int64 // streams that have every event
	allIn := make(chan struct{})
	var readers sync.WaitGroup
	defer readers.Wait()
	defer cancel() // ends the readers before waiting for them

	// Not errgroup.WithContext: its context ends when Wait returns, and with
	// it every stream.
	var opening errgroup.Group
	opening.SetLimit(fanoutOpening)
	for i := range streams {
		opening.Go(func() error {
			body, err := openStream(ctx, client, addr, key)
			if err != nil {
				return fmt.Errorf("stream %d: %w", i+1, err)
			}
			arrivals[i] = make([]arrival, 0, events)
			readers.Go(func() {
				defer body.Close()
				lines := bufio.NewScanner(body)
				for lines.Scan() {
					v, ok := strings.CutPrefix(lines.Text(), "id: ")
					if !ok {
						continue
					}
					id, _ := strconv.ParseInt(v, 10, 64)
					if arrivals[i] = append(arrivals[i], arrival{id, time.Now()}); len(arrivals[i]) == events {
						if complete.Add(1) == int64(streams) {
							close(allIn)
						}
					}
				}
			})
			return nil
		})
	}
	if err := opening.Wait(); err != nil {
		return res, err
	}
	time.Sleep(time.Second) // let the heap settle before reading it
	if res.rssOpen, err = procStatus(status, "VmRSS"); err != nil {
		return res, err
	}

	tag := randomHex()
	tick := time.NewTicker(interval)
	for k := range events {
		<-tick.C
		if err := post(client, addr, key, "/users", fmt.Sprintf(`{"name":"Fan-out %d","email":"fanout-%s-%d@example.com"}`, k, tag, k)); err != nil {
			tick.Stop()
			return res, err
		}
	}
	tick.Stop()
	select {
	case <-allIn:
	case <-time.After(30 * time.Second): // what has not arrived by then counts as missing
	}
	cancel()
	readers.Wait()

	first := int64(-1)
	for _, a := range arrivals {
		if len(a) > 0 && (first < 0 || a[0].id < first) {
			first = a[0].id
		}
	}
	if first < 0 {
		return res, errors.New("fan-out: no event reached any stream")
	}
	occurred, err := occurredAt(client, addr, key, first-1, events)
	if err != nil {
		return res, err
	}
	latencies := make([]time.Duration, 0, streams*events)
	for _, a := range arrivals {
		for _, ev := range a {
			if at, ok := occurred[ev.id]; ok {
				latencies = append(latencies, ev.at.Sub(at))
			}
		}
	}
	if len(latencies) == 0 {
		return res, errors.New("fan-out: no event of the run reached a stream")
	}
	slices.Sort(latencies)
	res.deliveries = len(latencies)
	res.p50 = latencies[len(latencies)/2].Round(time.Microsecond)
	res.p99 = latencies[len(latencies)*99/100].Round(time.Microsecond)
	res.max = latencies[len(latencies)-1].Round(time.Microsecond)
	return res, nil
}

// openStream opens one stream and reads up to its first frame (the retry
// advice), so that the stream is subscribed when it returns. An instance
// whose feed has not read the log yet answers 503 for a moment.
func openStream(ctx context.Context, client *http.Client, addr, key string) (io.ReadCloser, error) {
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/events/stream", nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Accept", "text/event-stream")
		res, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		if res.StatusCode == http.StatusServiceUnavailable && attempt < 50 {
			res.Body.Close()
			time.Sleep(100 * time.Millisecond)
			continue
		}
		if res.StatusCode != http.StatusOK {
			body, _ := io.ReadAll(io.LimitReader(res.Body, 4<<10))
			res.Body.Close()
			return nil, fmt.Errorf("%s: %s", res.Status, body)
		}
		// Byte by byte, so that nothing past the first frame is consumed.
		var last, b [1]byte
		for {
			if _, err := io.ReadFull(res.Body, b[:]); err != nil {
				res.Body.Close()
				return nil, fmt.Errorf("the stream ended before its first frame: %w", err)
			}
			if b[0] == '\n' && last[0] == '\n' {
				return res.Body, nil
			}
			last = b
		}
	}
}

func post(client *http.Client, addr, key, path, body string) error {
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+path, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	res, err := client.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusCreated {
		return fmt.Errorf("POST %s: %s: %s", path, res.Status, raw)
	}
	return nil
}

// occurredAt reads when each of n events after after occurred, from the log.
func occurredAt(client *http.Client, addr, key string, after int64, n int) (map[int64]time.Time, error) {
	out := make(map[int64]time.Time, n)
	for len(out) < n {
		req, err := http.NewRequest(http.MethodGet, fmt.Sprintf("http://%s/events?after=%d&limit=1000", addr, after), nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+key)
		res, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		var page struct {
			Items []struct {
				ID         int64     `json:"id"`
				OccurredAt time.Time `json:"occurred_at"`
			} `json:"items"`
			NextAfter int64 `json:"next_after"`
		}
		err = json.NewDecoder(res.Body).Decode(&page)
		res.Body.Close()
		if err != nil || res.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("GET /events: %s %v", res.Status, err)
		}
		if len(page.Items) == 0 {
			break
		}
		for _, ev := range page.Items {
			if len(out) < n {
				out[ev.ID] = ev.OccurredAt
			}
		}
		after = page.NextAfter
	}
	return out, nil
}
