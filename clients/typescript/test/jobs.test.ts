// Background jobs and webhooks through the generated client, against a real
// userapi with its workers (see harness.ts).
import assert from "node:assert/strict";
import { createHmac, timingSafeEqual } from "node:crypto";
import { createServer, type Server } from "node:http";
import { after, before, describe, it } from "node:test";

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
    assert.ok(hook.secret.length >= 16, "the secret is shown once, on create");

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

    // Verify the signature as a receiver would: HMAC-SHA256(secret, timestamp + "." + body).
    const timestamp = String(event.headers["userapi-timestamp"]);
    const signature = String(event.headers["userapi-signature"]);
    const expected = "v1=" + createHmac("sha256", hook.secret).update(`${timestamp}.${event.body}`).digest("hex");
    assert.ok(timingSafeEqual(Buffer.from(signature), Buffer.from(expected)), "the signature verifies");

    let deliveries = 0;
    for (let i = 0; i < 50 && deliveries === 0; i++) {
      deliveries = (await api.GET("/webhooks/{id}/deliveries", { params: { path: { id: hook.id } } })).data!.items.length;
      if (deliveries === 0) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(deliveries >= 1, "the delivery is logged");

    const removed = await api.DELETE("/webhooks/{id}", { params: { path: { id: hook.id } } });
    assert.equal(removed.response.status, 204);
  });
});
