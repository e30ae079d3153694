// The event stream helper against a real userapi (see harness.ts).
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";

import { streamEvents, type Event } from "../src/index.js";
import { startHarness, type Harness } from "./harness.js";

let h: Harness;
before(async () => {
  h = await startHarness();
});
after(async () => {
  await h?.stop();
});

const email = () => `events-${Date.now()}-${Math.random().toString(16).slice(2)}@example.com`;

/** Takes n events from the iterator, then stops it. */
async function take(events: AsyncGenerator<Event>, n: number): Promise<Event[]> {
  const got: Event[] = [];
  for await (const ev of events) {
    got.push(ev);
    if (got.length === n) break;
  }
  return got;
}

describe("streamEvents", () => {
  it("follows changes live, and resumes after a broken connection from the last id", { timeout: 240_000 }, async () => {
    const api = h.client();
    const key = h.key("events:read");
    const emails = [email(), email(), email(), email()];

    // The first connection breaks after two messages; every connection's
    // Last-Event-ID is recorded.
    const lastIds: (string | null)[] = [];
    const cutting: typeof fetch = async (input, init) => {
      const res = await fetch(input, init);
      lastIds.push(new Headers(init?.headers).get("Last-Event-ID"));
      if (lastIds.length > 1 || !res.body) return res;
      // Pass on the text up to the end of the second event, then break.
      let events = 0;
      const decoder = new TextDecoder();
      const encoder = new TextEncoder();
      const cut = new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, ctrl) {
          let text = decoder.decode(chunk, { stream: true });
          let passed = "";
          for (let end = text.indexOf("\n\n"); end >= 0; end = text.indexOf("\n\n")) {
            const message = text.slice(0, end + 2);
            text = text.slice(end + 2);
            passed += message;
            if (/(^|\n)id: /.test(message) && ++events === 2) {
              ctrl.enqueue(encoder.encode(passed));
              ctrl.error(new Error("connection cut"));
              return;
            }
          }
          ctrl.enqueue(encoder.encode(passed + text));
        },
      });
      return new Response(res.body.pipeThrough(cut), { status: res.status, headers: res.headers });
    };

    const controller = new AbortController();
    const events = streamEvents(h.baseUrl, { apiKey: key, signal: controller.signal, retryMs: 50, fetch: cutting });
    const taking = take(events, emails.length);
    // The stream is open once the first request is made; wait for it.
    while (lastIds.length === 0) await new Promise((r) => setTimeout(r, 10));
    for (const e of emails) {
      await api.POST("/users", { body: { name: "Ev", email: e } });
    }
    const got = await taking;
    controller.abort();

    assert.deepEqual(
      got.map((ev) => ev.data?.email),
      emails,
      "every change once, in order, across the reconnection",
    );
    assert.ok(got.every((ev) => ev.type === "user.created" && ev.user_id === ev.data?.id));
    assert.ok(got.every((ev, i) => i === 0 || ev.id > got[i - 1]!.id), "ids increase");
    assert.ok(lastIds.length >= 2, "it reconnected");
    assert.equal(lastIds[0], null);
    assert.equal(lastIds[1], String(got[1]!.id), "the reconnection sent the last id received");
  });

  it("starts after a given id, and stops when aborted", { timeout: 240_000 }, async () => {
    const api = h.client();
    const key = h.key("events:read");
    const first = (await api.POST("/users", { body: { name: "A", email: email() } })).data!;
    const second = (await api.POST("/users", { body: { name: "B", email: email() } })).data!;
    const controller = new AbortController();
    const events = streamEvents(h.baseUrl, { apiKey: key, after: 0, signal: controller.signal });
    const seen: Event[] = [];
    for await (const ev of events) {
      seen.push(ev);
      if (ev.user_id === second.id) controller.abort();
    }
    const mine = seen.filter((ev) => ev.user_id === first.id || ev.user_id === second.id);
    assert.deepEqual(mine.map((ev) => ev.user_id), [first.id, second.id]);

    const resumed = await take(streamEvents(h.baseUrl, { apiKey: key, after: mine[0]!.id }), 1);
    assert.equal(resumed[0]!.id, mine[1]!.id, "after=id starts right after it");
  });

  it("throws the problem for a key without events:read", async () => {
    const events = streamEvents(h.baseUrl, { apiKey: h.key("users:read") });
    await assert.rejects(events.next(), (err: { status?: number }) => err.status === 403);
  });
});
