// The mocks against the service: the same requests go to both, their
// answers must agree (status, problem title, errors[]), and every answer of
// the mocks must keep openapi.yaml.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";

import { getResponse } from "msw";

import { createMockHandlers, mockKeys } from "../src/mocks/index.js";
import { startHarness, type Harness } from "./harness.js";
import { contractViolation } from "./spec.js";

let h: Harness;
before(async () => {
  h = await startHarness();
});
after(async () => {
  await h?.stop();
});

interface Backend {
  name: string;
  baseUrl: string;
  fetch(request: Request): Promise<Response>;
  /** A key with every scope (the server's change now and then: its write budget is 10 a minute). */
  admin(): string;
  reader: string;
  /** Checks each answer; for the mocks, against openapi.yaml. */
  check(method: string, path: string, res: Response, body: unknown): void;
}

function mocks(): Backend {
  const handlers = createMockHandlers();
  return {
    name: "mocks",
    baseUrl: "http://mocks.userapi.test",
    async fetch(request) {
      return (await getResponse(handlers, request)) ?? new Response("no mock handler", { status: 599 });
    },
    admin: () => mockKeys.admin,
    reader: mockKeys.reader,
    check(method, path, res, body) {
      const why = contractViolation(method, path, res.status, res.headers.get("Content-Type") ?? "", body);
      assert.equal(why, undefined, `the mocks broke openapi.yaml: ${why}`);
    },
  };
}

function server(): Backend {
  let key = "";
  let uses = 0;
  const admin = () => (uses++ % 8 === 0 ? (key = h.key("admin")) : key);
  return { name: "server", baseUrl: h.baseUrl, fetch: (r) => fetch(r), admin, reader: h.key("users:read"), check() {} };
}

/** What two backends must agree on for one request. */
interface Seen {
  step: string;
  status: number;
  type?: string;
  title?: string;
  errors?: { location: string; message: string }[];
  detail?: string;
  header?: string | null;
}

/** Runs the scenario on a backend and returns what it saw, step by step. */
async function scenario(b: Backend): Promise<Seen[]> {
  const seen: Seen[] = [];
  const email = `mirror-${Date.now()}@example.com`;
  let last: { status: number; body: any; headers: Headers } = { status: 0, body: undefined, headers: new Headers() };

  async function send(step: string, method: string, path: string, opts: { key?: string | null; body?: unknown; headers?: Record<string, string>; detail?: boolean; header?: string } = {}) {
    const headers = new Headers(opts.headers);
    const key = opts.key === undefined ? b.admin() : opts.key;
    if (key) headers.set("Authorization", `Bearer ${key}`);
    if (opts.body !== undefined) headers.set("Content-Type", "application/json");
    const res = await b.fetch(new Request(b.baseUrl + path, { method, headers, body: opts.body === undefined ? null : JSON.stringify(opts.body) }));
    const text = await res.text();
    const body = text ? JSON.parse(text) : undefined;
    b.check(method, path.split("?")[0]!, res, body);
    last = { status: res.status, body, headers: res.headers };
    const s: Seen = { step, status: res.status };
    if (res.status >= 400) {
      s.type = body.type;
      s.title = body.title;
      if (body.errors) s.errors = [...body.errors].sort((x: any, y: any) => x.location.localeCompare(y.location));
      if (opts.detail) s.detail = body.detail.replace(/user \d+/, "user N"); // ids differ between the two
    }
    if (opts.header) s.header = res.headers.get(opts.header)?.replace(/, scope=.*/, "") ?? null;
    seen.push(s);
    return body;
  }

  await send("no key", "GET", "/users", { key: null, detail: true, header: "WWW-Authenticate" });
  await send("unknown key", "GET", "/users", { key: "uak_aaaaaaaa_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", header: "WWW-Authenticate" });
  await send("no scope", "POST", "/users", { key: b.reader, body: { name: "Eve", email }, header: "WWW-Authenticate" });
  await send("bad fields", "POST", "/users", { body: { name: "", email: "not-an-email" }, detail: true });
  await send("missing fields", "POST", "/users", { body: {}, detail: true });
  await send("unknown field", "POST", "/users", { body: { name: "A", email, role: "admin" }, detail: true });
  await send("long name", "POST", "/users", { body: { name: "x".repeat(101), email }, detail: true });
  await send("display-name email", "POST", "/users", { body: { name: "A", email: "Ada <ada@example.com>" } });
  for (const q of ["limit=0", "limit=5000", "limit=abc", "cursor=", "cursor=bogus", "cursor=YWZ0ZXI6MQ&offset=1"]) {
    await send(`list ${q}`, "GET", `/users?${q}`, { detail: true });
  }
  const user = await send("create", "POST", "/users", { body: { name: "Mirror", email } });
  const etag = last.headers.get("ETag")!;
  await send("duplicate email", "POST", "/users", { body: { name: "Copy", email: email.toUpperCase() }, detail: true });
  await send("read", "GET", `/users/${user.id}`);
  await send("not modified", "GET", `/users/${user.id}`, { headers: { "If-None-Match": etag } });
  await send("empty patch", "PATCH", `/users/${user.id}`, { body: {}, detail: true });
  await send("patch", "PATCH", `/users/${user.id}`, { body: { name: "Mirrored" }, headers: { "If-Match": etag } });
  await send("stale If-Match", "PATCH", `/users/${user.id}`, { body: { name: "Late" }, headers: { "If-Match": etag }, detail: true });
  await send("replace without email", "PUT", `/users/${user.id}`, { body: { name: "Whole" }, detail: true });
  await send("batch-get", "POST", "/users/batch-get", { body: { ids: [user.id, 987654321] } });
  await send("empty batch-get", "POST", "/users/batch-get", { body: { ids: [] }, detail: true });
  await send("stale If-Match on delete", "DELETE", `/users/${user.id}`, { headers: { "If-Match": etag }, detail: true });
  await send("unknown user", "GET", "/users/987654321", { detail: true });
  await send("bad id", "GET", "/users/abc", { detail: true });
  await send("delete", "DELETE", `/users/${user.id}`);
  await send("deleted", "GET", `/users/${user.id}`);
  return seen;
}

describe("mocks", () => {
  it("answer as the service does, within openapi.yaml", async () => {
    const want = await scenario(server());
    const got = await scenario(mocks());
    for (let i = 0; i < want.length; i++) {
      assert.deepEqual(got[i], want[i], `step "${want[i]!.step}": mocks (got) differ from the server (want)`);
    }
  });

  it("page through every user with next_cursor, within openapi.yaml", async () => {
    const b = mocks();
    const ids: number[] = [];
    let path = "/users?limit=7";
    for (let i = 0; i < 20; i++) {
      const res = await b.fetch(new Request(b.baseUrl + path, { headers: { Authorization: `Bearer ${b.admin()}` } }));
      const page = await res.json();
      b.check("GET", "/users", res, page);
      ids.push(...page.items.map((u: { id: number }) => u.id));
      if (page.next_cursor === null) break;
      path = `/users?limit=7&cursor=${page.next_cursor}`;
    }
    assert.equal(ids.length, 30, "the thirty fixtures, each once");
    assert.deepEqual(ids, [...ids].sort((x, y) => x - y));
  });
});
