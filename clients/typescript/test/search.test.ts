// Searches, sorts, counts and pages through users with the generated
// client, against a real userapi (see harness.ts).
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";

import { ProblemError, type User, type UserApiClient } from "../src/index.js";
import { startHarness, type Harness } from "./harness.js";

type Sort = "name" | "-created_at";

let h: Harness;
// A word only this run's users carry, so that other users never match.
const tag = `Find${randomBytes(4).toString("hex")}`;
// In the order they were created: four carry the tag in their name, one
// only in its email.
const created: User[] = [];

before(async () => {
  h = await startHarness();
  // Ten writes a minute per key: these five fit one key's budget.
  const api = h.client();
  for (const [name, local] of [
    [`${tag} Delta`, "delta"],
    [`${tag} Alpha`, "alpha"],
    ["Plain Person", `plain-${tag.toLowerCase()}`],
    [`${tag} Charlie`, "charlie"],
    [`${tag} Bravo`, "bravo"],
  ] as const) {
    const { data } = await api.POST("/users", { body: { name, email: `${local}-${randomBytes(3).toString("hex")}@example.com` } });
    created.push(data!);
  }
});
after(async () => {
  await h?.stop();
});

/** Follows next_cursor from the first page to the last, two users a page. */
async function walk(api: UserApiClient, q: string, sort: Sort): Promise<User[]> {
  const seen: User[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < 10; page++) {
    const { data } = await api.GET("/users", { params: { query: { q, sort, limit: 2, cursor } } });
    assert.ok(data!.items.length <= 2, `page ${page} has ${data!.items.length} users`);
    seen.push(...data!.items);
    if (data!.next_cursor === null) return seen;
    cursor = data!.next_cursor;
  }
  assert.fail(`no last page after 10 pages; saw ${seen.map((u) => u.name).join(", ")}`);
}

describe("search", () => {
  it("finds a substring of name or email in any case, and counts the matches", async () => {
    const api = h.client("users:read");
    const { data } = await api.GET("/users", { params: { query: { q: tag.toLowerCase(), count: "exact" } } });
    assert.deepEqual(
      data!.items.map((u) => u.id),
      created.map((u) => u.id),
      "every user that carries the word, by id",
    );
    assert.equal(data!.total, created.length);
    assert.equal(data!.total_is_estimate, false);
  });

  const orders: { sort: Sort; want: () => string[] }[] = [
    { sort: "name", want: () => ["Alpha", "Bravo", "Charlie", "Delta"].map((n) => `${tag} ${n}`).concat("Plain Person") },
    { sort: "-created_at", want: () => created.map((u) => u.name).reverse() },
  ];
  for (const { sort, want } of orders) {
    it(`walks every cursor of sort=${sort}, each user once and in order`, async () => {
      const got = await walk(h.client("users:read"), tag.toUpperCase(), sort);
      assert.deepEqual(got.map((u) => u.name), want());
      assert.equal(new Set(got.map((u) => u.id)).size, created.length, "no user twice, none missing");
    });
  }

  it("refuses a cursor sent with another q, naming query.cursor", async () => {
    const api = h.client("users:read");
    const first = await api.GET("/users", { params: { query: { q: tag, limit: 2 } } });
    const cursor = first.data!.next_cursor;
    assert.ok(cursor, "the first page has a next one");
    let refused: ProblemError | undefined;
    try {
      await api.GET("/users", { params: { query: { q: `${tag} Alpha`, limit: 2, cursor } } });
    } catch (e) {
      assert.ok(e instanceof ProblemError, `expected a ProblemError, got ${String(e)}`);
      refused = e;
    }
    assert.ok(refused, "the cursor of another query was accepted");
    assert.equal(refused.status, 422);
    assert.deepEqual(refused.problem.errors?.map((e) => e.location), ["query.cursor"]);
    assert.ok("query.cursor" in refused.fieldErrors);
  });
});
