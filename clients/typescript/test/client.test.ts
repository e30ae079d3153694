// Exercises every operation of the API through the generated client,
// against a real userapi (see harness.ts).
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";

import { ProblemError, type AuditEntry, type User } from "../src/index.js";
import { startHarness, type Harness } from "./harness.js";

let h: Harness;
before(async () => {
  h = await startHarness();
});
after(async () => {
  await h?.stop();
});

let n = 0;
function email(): string {
  n++;
  return `client-${Date.now()}-${n}@example.com`;
}

/** Awaits a call that must fail, and returns its problem. */
async function problemOf(call: Promise<unknown>): Promise<ProblemError> {
  try {
    await call;
  } catch (e) {
    assert.ok(e instanceof ProblemError, `expected a ProblemError, got ${String(e)}`);
    return e;
  }
  assert.fail("the call succeeded; a problem was expected");
}

describe("authentication", () => {
  it("answers 401 without a key and 403 without the scope", async () => {
    const missing = await problemOf(h.anonymous().GET("/users", {}));
    assert.equal(missing.status, 401);
    assert.match(missing.response.headers.get("WWW-Authenticate") ?? "", /^Bearer/);

    const reader = h.client("users:read");
    const list = await reader.GET("/users", { params: { query: { limit: 1 } } });
    assert.equal(list.response.status, 200);
    const denied = await problemOf(reader.POST("/users", { body: { name: "Eve", email: email() } }));
    assert.equal(denied.status, 403);
    assert.match(denied.problem.detail, /users:write/);
  });
});

describe("users", () => {
  it("creates, reads, conditionally reads, replaces, patches and deletes", async () => {
    const api = h.client();
    const created = await api.POST("/users", { body: { name: "Ada Lovelace", email: email() } });
    assert.equal(created.response.status, 201);
    const user: User = created.data!;
    assert.equal(user.name, "Ada Lovelace");
    assert.equal(created.response.headers.get("Location"), `/users/${user.id}`);
    const etag = created.response.headers.get("ETag")!;
    assert.ok(etag);

    const got = await api.GET("/users/{id}", { params: { path: { id: user.id } } });
    assert.deepEqual(got.data, user);

    const notModified = await api.GET("/users/{id}", { params: { path: { id: user.id }, header: { "If-None-Match": etag } } });
    assert.equal(notModified.response.status, 304);
    assert.equal(notModified.data, undefined);

    const replaced = await api.PUT("/users/{id}", {
      params: { path: { id: user.id }, header: { "If-Match": etag } },
      body: { name: "Ada King", email: user.email },
    });
    assert.equal(replaced.data!.name, "Ada King");
    const etag2 = replaced.response.headers.get("ETag")!;
    assert.notEqual(etag2, etag);

    // The old ETag no longer matches.
    const stale = await problemOf(
      api.PATCH("/users/{id}", { params: { path: { id: user.id }, header: { "If-Match": etag } }, body: { name: "X" } }),
    );
    assert.equal(stale.status, 412);

    const patched = await api.PATCH("/users/{id}", {
      params: { path: { id: user.id }, header: { "If-Match": etag2 } },
      body: { name: "Countess of Lovelace" },
    });
    assert.equal(patched.data!.name, "Countess of Lovelace");
    assert.equal(patched.data!.email, user.email, "PATCH keeps fields it was not sent");

    const deleted = await api.DELETE("/users/{id}", { params: { path: { id: user.id } } });
    assert.equal(deleted.response.status, 204);
    const gone = await problemOf(api.GET("/users/{id}", { params: { path: { id: user.id } } }));
    assert.equal(gone.status, 404);
    assert.match(gone.problem.detail, new RegExp(`user ${user.id}`));
  });

  it("lists every user once by following next_cursor", async () => {
    const api = h.client();
    const mine = new Set<number>();
    for (let i = 0; i < 5; i++) {
      const { data } = await api.POST("/users", { body: { name: `Pager ${i}`, email: email() } });
      mine.add(data!.id);
    }
    const seen: number[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < 100; page++) {
      const { data } = await api.GET("/users", { params: { query: { limit: 2, cursor } } });
      assert.ok(data!.items.length <= 2);
      seen.push(...data!.items.map((u) => u.id));
      if (data!.next_cursor === null) break;
      cursor = data!.next_cursor;
    }
    assert.deepEqual([...seen].sort((a, b) => a - b), seen, "pages come in id order");
    assert.equal(new Set(seen).size, seen.length, "no user twice");
    for (const id of mine) assert.ok(seen.includes(id), `user ${id} was listed`);
  });

  it("gets many users in one call", async () => {
    const api = h.client();
    const a = (await api.POST("/users", { body: { name: "A", email: email() } })).data!;
    const b = (await api.POST("/users", { body: { name: "B", email: email() } })).data!;
    const unknown = b.id + 1_000_000;
    const { data } = await api.POST("/users/batch-get", { body: { ids: [b.id, unknown, a.id] } });
    assert.deepEqual(data!.items.map((u) => u.id), [b.id, a.id]);
    assert.deepEqual(data!.missing, [unknown]);
  });
});

describe("audit log", () => {
  it("lists each change to a user once, newest first, following next_after", async () => {
    const api = h.client();
    const created = await api.POST("/users", { body: { name: "Grace Hopper", email: email() } });
    const id = created.data!.id;
    const patched = await api.PATCH("/users/{id}", { params: { path: { id } }, body: { name: "Grace Brewster Hopper" } });
    assert.equal(patched.response.status, 200);

    const entries: AuditEntry[] = [];
    let after: number | undefined;
    for (;;) {
      const page = await api.GET("/audit", { params: { query: { target: `user:${id}`, limit: 1, after } } });
      entries.push(...page.data!.items);
      if (page.data!.next_after === null) break;
      after = page.data!.next_after;
    }
    assert.deepEqual(
      entries.map((e) => e.action),
      ["user.updated", "user.created"],
    );
    const update = entries[0]!;
    assert.equal(update.request_id, patched.response.headers.get("X-Request-ID"));
    assert.match(update.actor, /^uak_/);
    assert.deepEqual([update.before, update.after], [{ name: "Grace Hopper" }, { name: "Grace Brewster Hopper" }]);

    const denied = await problemOf(h.client("users:read").GET("/audit", {}));
    assert.equal(denied.status, 403);
    assert.match(denied.problem.detail, /audit:read/);
  });
});

describe("lifecycle", () => {
  it("suspends, reactivates, deletes, undeletes and purges", async () => {
    // Two keys: each has its own budget of writes.
    const api = h.client();
    const admin = h.client();
    const address = email();
    const created = (await api.POST("/users", { body: { name: "Ada", email: address } })).data!;
    const id = created.id;
    assert.equal(created.state, "active");

    const suspended = await api.POST("/users/{id}/suspend", { params: { path: { id }, header: { "If-Match": created.etag } } });
    assert.equal(suspended.data!.state, "suspended");
    assert.notEqual(suspended.data!.etag, created.etag);
    assert.equal(suspended.response.headers.get("ETag"), suspended.data!.etag);
    const frozen = await problemOf(api.PATCH("/users/{id}", { params: { path: { id } }, body: { name: "X" } }));
    assert.equal(frozen.status, 409);
    assert.equal(frozen.problem.type, "/problems/user-suspended");
    const listed = await api.GET("/users", { params: { query: { state: "suspended", email: address } } });
    assert.deepEqual(listed.data!.items.map((u) => u.id), [id]);

    const reactivated = await api.POST("/users/{id}/reactivate", { params: { path: { id }, header: { "If-Match": suspended.data!.etag } } });
    assert.equal(reactivated.data!.state, "active");

    const deleted = await api.DELETE("/users/{id}", { params: { path: { id }, header: { "If-Match": reactivated.data!.etag } } });
    assert.equal(deleted.response.status, 204);
    const hidden = await problemOf(api.GET("/users/{id}", { params: { path: { id } } }));
    assert.equal(hidden.status, 404);
    const shown = await api.GET("/users/{id}", { params: { path: { id }, query: { show_deleted: true } } });
    assert.equal(shown.data!.state, "deleted");
    assert.ok(shown.data!.deleted_at);
    const reserved = await problemOf(api.POST("/users", { body: { name: "Other", email: address } }));
    assert.equal(reserved.status, 409);
    assert.match(reserved.problem.detail, new RegExp(`deleted user ${id}.*undeleted`));
    const notNow = await problemOf(admin.POST("/users/{id}/suspend", { params: { path: { id } } }));
    assert.equal(notNow.problem.type, "/problems/state-conflict");
    assert.match(notNow.problem.detail, /is deleted/);

    const undeleted = await admin.POST("/users/{id}/undelete", { params: { path: { id }, header: { "If-Match": shown.data!.etag } } });
    assert.equal(undeleted.data!.state, "active");
    assert.equal(undeleted.data!.email, address);

    const writer = h.client("users:read,users:write");
    const refused = await problemOf(writer.DELETE("/users/{id}", { params: { path: { id }, query: { purge: true } } }));
    assert.equal(refused.status, 403);
    const purged = await admin.DELETE("/users/{id}", { params: { path: { id }, query: { purge: true } } });
    assert.equal(purged.response.status, 204);
    const erased = await problemOf(admin.GET("/users/{id}", { params: { path: { id }, query: { show_deleted: true } } }));
    assert.equal(erased.status, 404);
    const again = await admin.POST("/users", { body: { name: "Ada again", email: address } });
    assert.equal(again.response.status, 201, "a purged user's address is free");
  });
});

describe("errors", () => {
  it("409 for a taken email, in any case", async () => {
    const api = h.client();
    const address = email();
    await api.POST("/users", { body: { name: "First", email: address } });
    const p = await problemOf(api.POST("/users", { body: { name: "Second", email: address.toUpperCase() } }));
    assert.equal(p.status, 409);
    assert.equal(p.problem.type, "/problems/email-taken");
    assert.deepEqual(p.problem.errors, [{ location: "body.email", message: "is already taken by another user" }]);
  });

  it("422 names each bad field", async () => {
    const api = h.client();
    const p = await problemOf(api.POST("/users", { body: { name: "", email: "not-an-email" } }));
    assert.equal(p.status, 422);
    const q = await problemOf(api.GET("/users", { params: { query: { limit: 5000 } } }));
    assert.equal(q.status, 422);
    // A validating proxy in front refuses these itself, in its own words.
    if (!process.env.PRISM) {
      assert.deepEqual(Object.keys(p.fieldErrors).sort(), ["body.email", "body.name"]);
      assert.equal(p.fieldErrors["body.email"], "must be a valid email address");
      assert.ok("query.limit" in q.fieldErrors);
    }
  });

  it("404 for an unknown user", async () => {
    const api = h.client();
    const p = await problemOf(api.GET("/users/{id}", { params: { path: { id: 987654321 } } }));
    assert.equal(p.status, 404);
    assert.equal(p.response.headers.get("Content-Type"), "application/problem+json");
  });

  it("429 with Retry-After when the write budget is spent", async () => {
    const api = h.client();
    let refused: ProblemError | undefined;
    for (let i = 0; i < 40 && !refused; i++) {
      try {
        await api.POST("/users", { body: { name: `Burst ${i}`, email: email() } });
      } catch (e) {
        if (!(e instanceof ProblemError)) throw e;
        refused = e;
      }
    }
    assert.ok(refused, "40 writes at 20/1m were never refused");
    assert.equal(refused.status, 429);
    assert.ok((refused.retryAfter ?? 0) >= 1, "Retry-After is at least a second");
    assert.equal(refused.response.headers.get("RateLimit-Remaining"), "0");
  });
});

describe("idempotency keys", () => {
  it("replays a create sent again with its key, and refuses the key for another request", async () => {
    const api = h.client();
    const key = `client-key-${Date.now()}`;
    const body = { name: "Ada", email: email() };
    const first = await api.POST("/users", { params: { header: { "Idempotency-Key": key } }, body });
    assert.equal(first.response.status, 201);
    assert.equal(first.response.headers.get("Idempotent-Replayed"), null);

    const again = await api.POST("/users", { params: { header: { "Idempotency-Key": key } }, body });
    assert.equal(again.response.status, 201);
    assert.equal(again.response.headers.get("Idempotent-Replayed"), "true");
    assert.deepEqual(again.data, first.data);
    assert.equal(again.response.headers.get("Location"), first.response.headers.get("Location"));

    const reused = await problemOf(
      api.POST("/users", { params: { header: { "Idempotency-Key": key } }, body: { name: "Bob", email: email() } }),
    );
    assert.equal(reused.status, 422);
    assert.equal(reused.problem.errors?.[0]?.location, "header.Idempotency-Key");
  });
});
