/**
 * Following `GET /events/stream` (Server-Sent Events) with `fetch`, since
 * the browser's `EventSource` cannot send `Authorization`. Messages are
 * parsed by eventsource-parser.
 */
import { createParser } from "eventsource-parser";

import { HttpError, ProblemError, type Problem } from "./index.js";
import type { components } from "./schema.js";

/** One change to a user, as `/events`, the stream and webhooks carry it. */
export type Event = components["schemas"]["Event"];

/** Options for {@link streamEvents}. */
export interface StreamEventsOptions {
  /** The API key (scope `events:read`), or a function called per connection. */
  apiKey?: string | (() => string | null | undefined);
  /**
   * Start right after this event id (`0`: the oldest event kept). Without it
   * the stream starts with the next event.
   */
  after?: number;
  /** Ends the stream: the iterator returns. */
  signal?: AbortSignal;
  /**
   * Milliseconds to wait before reconnecting, until the server says
   * otherwise with `retry:`.
   */
  retryMs?: number;
  /** A fetch to use instead of the global one. */
  fetch?: typeof fetch;
}

/**
 * Follows the service's events from baseUrl, such as
 * `http://localhost:8080`, as an async iterator:
 *
 * ```ts
 * for await (const ev of streamEvents(url, { apiKey, after: 0, signal })) { ... }
 * ```
 *
 * When the stream ends (the instance shuts down, the client fell behind, the
 * network failed) it reconnects on its own with the last id it yielded in
 * `Last-Event-ID`, so no event is missed or repeated; `429` and `503` are
 * retried after `Retry-After`. Other error answers (`401`, `403`, `410` for
 * an id the log no longer keeps) are thrown as {@link ProblemError}.
 */
export async function* streamEvents(baseUrl: string, options: StreamEventsOptions = {}): AsyncGenerator<Event, void, undefined> {
  const { signal } = options;
  const fetchFn = options.fetch ?? fetch;
  let last = options.after;
  let retryMs = options.retryMs ?? 2000;
  const url = new URL("/events/stream", baseUrl);

  while (!signal?.aborted) {
    const headers: Record<string, string> = { Accept: "text/event-stream" };
    const key = typeof options.apiKey === "function" ? options.apiKey() : options.apiKey;
    if (key) headers["Authorization"] = `Bearer ${key}`;
    if (last !== undefined) headers["Last-Event-ID"] = String(last);

    let response: Response;
    try {
      response = await fetchFn(url, { headers, signal: signal ?? null });
    } catch (err) {
      if (signal?.aborted) return;
      await sleep(retryMs, signal);
      continue;
    }
    if (!response.ok || !response.body) {
      const error = await errorOf(response);
      if (response.status !== 429 && response.status !== 503) throw error;
      await sleep((error.retryAfter ?? retryMs / 1000) * 1000, signal);
      continue;
    }

    const ready: Event[] = [];
    const parser = createParser({
      onEvent: (message) => {
        if (message.id !== undefined) ready.push(JSON.parse(message.data) as Event);
      },
      onRetry: (ms) => {
        retryMs = ms;
      },
    });
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        parser.feed(value);
        for (let ev = ready.shift(); ev !== undefined; ev = ready.shift()) {
          last = ev.id;
          yield ev;
        }
      }
    } catch {
      // The connection broke: reconnect below, from the last id.
    } finally {
      reader.cancel().catch(() => undefined);
    }
    if (signal?.aborted) return;
    await sleep(retryMs, signal);
  }
}

/** The error an answer that is not a stream stands for. */
async function errorOf(response: Response): Promise<HttpError> {
  const text = await response.text();
  if ((response.headers.get("Content-Type") ?? "").startsWith("application/problem+json")) {
    try {
      const problem = JSON.parse(text) as Problem;
      if (typeof problem.status === "number") return new ProblemError(problem, response, text);
    } catch {
      // not JSON after all
    }
  }
  return new HttpError(response, text);
}

/** Waits ms, or less when signal aborts. */
function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
  });
}
