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
  /** A page's or a download's users, by name. */
  names?: string[];
  /** A download's fields: the CSV header, or each NDJSON line's keys. */
  fields?: string;
  total?: number;
  total_is_estimate?: boolean;
  /** A user's state, as an answer of 200 gives it. */
  state?: string;
  /** How many ids a batch read found missing. */
  missing?: number;
}

/** Runs the scenario on a backend and returns what it saw, step by step. */
async function scenario(b: Backend): Promise<Seen[]> {
  const seen: Seen[] = [];
  const email = `mirror-${Date.now()}@example.com`;
  // A word only this run's users carry; names are compared without it.
  const tag = `Srch${Date.now().toString(36)}`;
  const untagged = (name: string) => name.replace(tag, "TAG");
  let last: { status: number; body: any; headers: Headers } = { status: 0, body: undefined, headers: new Headers() };

  async function send(step: string, method: string, path: string, opts: { key?: string | null; body?: unknown; headers?: Record<string, string>; detail?: boolean; header?: string; page?: boolean } = {}) {
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
      if (opts.detail) s.detail = body.detail.replace(/(user |users\/)\d+/g, "$1N"); // ids differ between the two
    }
    if (opts.header) s.header = res.headers.get(opts.header)?.replace(/, scope=.*/, "") ?? null;
    if (res.status === 200 && typeof body?.state === "string") s.state = body.state;
    if (res.status === 200 && Array.isArray(body?.missing)) s.missing = body.missing.length;
    if (opts.page && res.status === 200) {
      s.names = body.items.map((u: { name: string }) => untagged(u.name));
      if ("total" in body) [s.total, s.total_is_estimate] = [body.total, body.total_is_estimate];
    }
    seen.push(s);
    return body;
  }

  /** Follows next_cursor from the first page of query to its last, recording each page. */
  async function walk(step: string, query: string) {
    let cursor = "";
    for (let i = 0; i < 10; i++) {
      const page = await send(`${step}, page ${i + 1}`, "GET", `/users?${query}${cursor}`, { page: true });
      if (!page?.next_cursor) return;
      cursor = `&cursor=${encodeURIComponent(page.next_cursor)}`;
    }
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
  await send("deleted", "GET", `/users/${user.id}`, { detail: true });

  // The lifecycle: a soft delete hides the user, undelete brings it back,
  // a suspended user is read but not changed, and purge erases.
  const exported = async (step: string, query: string) => {
    const res = await b.fetch(new Request(`${b.baseUrl}/users/export?format=csv&${query}`, { headers: { Authorization: `Bearer ${b.admin()}` } }));
    const text = await res.text();
    b.check("GET", "/users/export", res, res.status === 200 ? text : JSON.parse(text));
    seen.push({ step, status: res.status, names: res.status === 200 ? text.split("\r\n").filter(Boolean).slice(1).map((l) => l.split(",")[1]!) : [] });
  };
  const mine = `email=${encodeURIComponent(email)}`;
  await send("deleted, show_deleted without users:admin", "GET", `/users/${user.id}?show_deleted=true`, { key: b.reader, header: "WWW-Authenticate" });
  await send("deleted, show_deleted", "GET", `/users/${user.id}?show_deleted=true`);
  await send("deleted, not in the list", "GET", `/users?${mine}`, { page: true });
  await send("deleted, listed with show_deleted", "GET", `/users?${mine}&show_deleted=true`, { page: true });
  await send("deleted, state=deleted without show_deleted", "GET", `/users?${mine}&state=deleted`, { detail: true });
  await send("deleted, list show_deleted without users:admin", "GET", `/users?${mine}&show_deleted=true`, { key: b.reader, header: "WWW-Authenticate" });
  await send("bad show_deleted", "GET", `/users?show_deleted=maybe&state=gone`, { detail: true });
  await exported("deleted, not exported", mine);
  await exported("deleted, exported with show_deleted", `${mine}&show_deleted=true`);
  await send("deleted, not in batch-get", "POST", "/users/batch-get", { body: { ids: [user.id] } });
  await send("delete again", "DELETE", `/users/${user.id}`, { detail: true });
  await send("process deleted", "POST", `/users/${user.id}/process`, { detail: true });
  await send("patch deleted", "PATCH", `/users/${user.id}`, { body: { name: "Ghost" }, detail: true });
  await send("email of a deleted user", "POST", "/users", { body: { name: "Copy", email }, detail: true });
  await send("reactivate deleted", "POST", `/users/${user.id}/reactivate`, { detail: true });
  await send("suspend deleted", "POST", `/users/${user.id}/suspend`, { detail: true });
  await send("undelete, stale If-Match", "POST", `/users/${user.id}/undelete`, { headers: { "If-Match": etag }, detail: true });
  await send("undelete", "POST", `/users/${user.id}/undelete`, { header: "ETag" });
  await send("undelete again", "POST", `/users/${user.id}/undelete`, { detail: true });
  await send("reactivate active", "POST", `/users/${user.id}/reactivate`, { detail: true });
  await send("suspend", "POST", `/users/${user.id}/suspend`, { headers: { "If-Match": last.headers.get("ETag")! }, header: "ETag" });
  await send("suspend again", "POST", `/users/${user.id}/suspend`, { header: "ETag" });
  await send("suspended, listed by state", "GET", `/users?${mine}&state=suspended`, { page: true });
  await send("patch suspended", "PATCH", `/users/${user.id}`, { body: { name: "Frozen" }, detail: true });
  await send("replace suspended", "PUT", `/users/${user.id}`, { body: { name: "Frozen", email }, detail: true });
  await send("undelete suspended", "POST", `/users/${user.id}/undelete`, { detail: true });
  await send("reactivate", "POST", `/users/${user.id}/reactivate`, { header: "ETag" });
  await send("purge without users:admin", "DELETE", `/users/${user.id}?purge=true`, { key: b.reader });
  await send("purge", "DELETE", `/users/${user.id}?purge=true`);
  await send("purged", "GET", `/users/${user.id}?show_deleted=true`, { detail: true });
  await send("undelete purged", "POST", `/users/${user.id}/undelete`, { detail: true });

  // Search, sort, cursors and counts over users only this run's tag finds
  // (the server holds none of the mocks' fixtures). Names sort by code
  // point: "Bob" before "ada", "Ångström" before "Émile". In CSV the
  // name that starts with "=" is kept from being read as a formula.
  for (const [name, local] of [[`${tag} Émile Zola`, "zola"], [`${tag} ada Byron`, "byron"], ['=Plain, "Person"', `plain.${tag.toLowerCase()}`], [`${tag} Bob 100%`, "bob"], [`${tag} Ångström`, "angstrom"]] as const) {
    await send(`create ${untagged(name)}`, "POST", "/users", { body: { name, email: `${local}-${Date.now()}@example.com` } });
  }
  const q = (s: string) => `q=${encodeURIComponent(s)}`;
  await send("q in another case, counted", "GET", `/users?${q(tag.toUpperCase())}&count=exact`, { page: true });
  await send("q without accents", "GET", `/users?${q(`${tag.toLowerCase()} EMILE`)}`, { page: true });
  await send("q with accents the name lacks", "GET", `/users?${q(`${tag} bób`)}&count=estimated`, { page: true, key: b.reader });
  await send("q with a literal %", "GET", `/users?${q(`${tag} Bob 100%`)}`, { page: true });
  await send("q % is no wildcard", "GET", `/users?${q(`${tag}%`)}`, { page: true });
  await walk("sort=-created_at", `${q(tag)}&sort=-created_at&limit=2`);
  await walk("sort=name", `${q(tag)}&sort=name&limit=2`);
  await send("created_after", "GET", `/users?${q(tag)}&created_after=2000-01-01T00:00:00Z&updated_before=2999-01-01T00:00:00%2B02:00&sort=email`, { page: true });
  await send("empty q", "GET", "/users?q=", { detail: true });
  await send("bad sort", "GET", "/users?sort=age", { detail: true });
  await send("bad count", "GET", "/users?count=all", { detail: true });
  await send("bad date-times", "GET", "/users?created_after=yesterday&updated_before=2026-02-30T00:00:00Z", { detail: true });
  await send("reversed range", "GET", "/users?created_after=2026-02-01T00:00:00Z&created_before=2026-01-01T00:00:00Z", { detail: true });
  await send("empty ranges", "GET", "/users?created_after=2026-01-01T00:00:00Z&created_before=2026-01-01T00:00:00Z&updated_after=2026-01-01T01:00:00%2B01:00&updated_before=2026-01-01T00:00:00Z", { detail: true });
  const first = await send("first page", "GET", `/users?${q(tag)}&sort=name&limit=2`, { page: true });
  const cursor = encodeURIComponent(first.next_cursor);
  await send("cursor with another q", "GET", `/users?${q(`${tag} Bob`)}&sort=name&limit=2&cursor=${cursor}`, { detail: true });
  await send("cursor with another sort", "GET", `/users?${q(tag)}&sort=-name&limit=2&cursor=${cursor}`, { detail: true });
  await send("cursor with another filter", "GET", `/users?${q(tag)}&sort=name&limit=2&email=a@example.com&cursor=${cursor}`, { detail: true });
  const tampered = first.next_cursor.slice(0, 10) + (first.next_cursor[10] === "A" ? "B" : "A") + first.next_cursor.slice(11);
  await send("tampered cursor", "GET", `/users?${q(tag)}&sort=name&limit=2&cursor=${tampered}`, { detail: true });
  await send("cursor with its query", "GET", `/users?${q(tag)}&sort=name&limit=2&cursor=${cursor}`, { page: true });

  for (const format of ["csv", "ndjson"]) {
    const path = `/users/export?format=${format}&${q(tag)}&sort=-name`;
    const res = await b.fetch(new Request(b.baseUrl + path, { headers: { Authorization: `Bearer ${b.reader}` } }));
    const text = await res.text();
    b.check("GET", "/users/export", res, text);
    const lines = text.split(format === "csv" ? "\r\n" : "\n").filter(Boolean);
    let names: string[] = format === "csv" ? lines.map((l) => l.replace(/^\d+,|(,[^,]*){4}$/g, "")) : lines.map((l) => JSON.parse(l).name);
    names = names.map(untagged);
    const fields = format === "csv" ? lines[0] : lines.map((l) => Object.keys(JSON.parse(l)).join(",")).join(" ");
    seen.push({ step: `export ${format}`, status: res.status, header: `${res.headers.get("Content-Type")}; ${res.headers.get("Content-Disposition")}`, names, fields });
  }
  await send("export, reversed range", "GET", "/users/export?updated_after=2026-02-01T00:00:00Z&updated_before=2026-01-01T00:00:00Z", { detail: true });
  await send("export, bad format", "GET", "/users/export?format=xlsx", { detail: true });
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
