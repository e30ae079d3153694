// Background jobs and webhooks through the generated client, against a real
// userapi with its workers (see harness.ts).
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import { after, before, describe, it } from "node:test";

import { Webhook } from "standardwebhooks";

import { startHarness, type Harness } from "./harness.js";

let h: Harness;
before(async () => {
  h = await startHarness();
});
after(async () => {
  await h?.stop();
});

const email = () => `jobs-${Date.now()}-${Math.random().toString(16).slice(2)}@example.com`;

describe("jobs", () => {
  it("processes a user: 202 with Location, then poll until completed", async () => {
    const api = h.client();
    const user = (await api.POST("/users", { body: { name: "Ada", email: email() } })).data!;
    const started = await api.POST("/users/{id}/process", { params: { path: { id: user.id } } });
    assert.equal(started.response.status, 202);
    const job = started.data!;
    assert.equal(started.response.headers.get("Location"), `/jobs/${job.id}`);

    let state = job.state;
    for (let i = 0; i < 200 && state !== "completed"; i++) {
      await new Promise((r) => setTimeout(r, 100));
      state = (await api.GET("/jobs/{id}", { params: { path: { id: job.id } } })).data!.state;
    }
    assert.equal(state, "completed");
  });
});

describe("webhooks", () => {
  let receiver: Server;
  const received: { body: string; headers: Record<string, string | string[] | undefined> }[] = [];
  before(async () => {
    receiver = createServer((req, res) => {
      let body = "";
      req.on("data", (c) => (body += c));
      req.on("end", () => {
        received.push({ body, headers: req.headers });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => receiver.listen(0, "127.0.0.1", r));
  });
  after(() => receiver?.close());

  it("subscribes, receives a signed event, lists deliveries, unsubscribes", async () => {
    const api = h.client();
    const addr = receiver.address();
    assert.ok(addr && typeof addr === "object");
    const created = await api.POST("/webhooks", {
      body: { url: `http://127.0.0.1:${addr.port}/hook`, events: ["user.created"] },
    });
    assert.equal(created.response.status, 201);
    const hook = created.data!;
    assert.match(hook.secret, /^whsec_[A-Za-z0-9+/]+={0,2}$/, "the secret is shown once, on create");

    const listed = (await api.GET("/webhooks")).data!;
    assert.ok(listed.items.some((w) => w.id === hook.id));
    const got = (await api.GET("/webhooks/{id}", { params: { path: { id: hook.id } } })).data!;
    assert.equal(got.url, hook.url);

    const user = (await api.POST("/users", { body: { name: "Hooked", email: email() } })).data!;
    let event: (typeof received)[number] | undefined;
    for (let i = 0; i < 200 && !event; i++) {
      await new Promise((r) => setTimeout(r, 100));
      event = received.find((e) => JSON.parse(e.body).data?.id === user.id);
    }
    assert.ok(event, "the user.created event arrived");
    const body = JSON.parse(event.body);
    assert.equal(body.type, "user.created");

    // Verify as a receiver would, with the official Standard Webhooks library.
    assert.deepEqual(new Webhook(hook.secret).verify(event.body, stringHeaders(event.headers)), body);
    assert.equal(event.headers["webhook-id"], String(body.id), "webhook-id is the event's id, in decimal");

    let deliveries = 0;
    for (let i = 0; i < 50 && deliveries === 0; i++) {
      deliveries = (await api.GET("/webhooks/{id}/deliveries", { params: { path: { id: hook.id } } })).data!.items.length;
      if (deliveries === 0) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(deliveries >= 1, "the delivery is logged");

    const removed = await api.DELETE("/webhooks/{id}", { params: { path: { id: hook.id } } });
    assert.equal(removed.response.status, 204);
  });

  it("tests the endpoint, rotates the secret: both secrets verify during the overlap, only the new one after", async () => {
    const api = h.client();
    const addr = receiver.address();
    assert.ok(addr && typeof addr === "object");
    const hook = (
      await api.POST("/webhooks", { body: { url: `http://127.0.0.1:${addr.port}/hook`, events: ["user.created"] } })
    ).data!;
    const path = { params: { path: { id: hook.id } } };
    const ping = async () => {
      const res = await api.POST("/webhooks/{id}/test", path);
      assert.equal(res.response.status, 200);
      const result = res.data!;
      assert.equal(result.status_code, 204);
      assert.ok(result.success && result.latency_ms > 0);
      const got = received.find((e) => e.headers["webhook-id"] === result.message_id);
      assert.ok(got, "the test event arrived before the answer");
      assert.equal(JSON.parse(got.body).type, "ping");
      return got;
    };
    const verifies = (secret: string, e: (typeof received)[number]) => {
      try {
        new Webhook(secret).verify(e.body, stringHeaders(e.headers));
        return true;
      } catch {
        return false;
      }
    };

    assert.ok(verifies(hook.secret, await ping()), "the test event verifies with the secret");
    const rotated = await api.POST("/webhooks/{id}/rotate-secret", path);
    assert.equal(rotated.response.status, 200);
    const secret = rotated.data!.secret;
    assert.notEqual(secret, hook.secret);
    assert.ok(Date.parse(rotated.data!.previous_secret_expires_at) > Date.now() + 3_600_000, "the old secret signs for hours");

    const during = await ping();
    assert.equal(String(during.headers["webhook-signature"]).split(" ").length, 2, "two signatures during the overlap");
    assert.ok(verifies(hook.secret, during), "the old secret verifies during the overlap");
    assert.ok(verifies(secret, during), "the new secret verifies during the overlap");

    if (h.sql) {
      // The overlap ends, as a day passing would end it.
      h.sql(`UPDATE webhooks SET previous_secret_until = now() - interval '1 second' WHERE id = ${hook.id}`);
      const afterwards = await ping();
      assert.ok(!verifies(hook.secret, afterwards), "the old secret no longer verifies");
      assert.ok(verifies(secret, afterwards), "the new secret verifies");
    }
    await api.DELETE("/webhooks/{id}", path);
  });
});

/** Node's incoming headers as the verifier takes them. */
function stringHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, String(v)]));
}
