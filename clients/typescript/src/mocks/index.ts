/**
 * MSW (v2) handlers that behave like userapi, over an in-memory store: build
 * screens before the service runs, and test them without it.
 *
 * ```ts
 * import { setupServer } from "msw/node";          // or setupWorker from "msw/browser"
 * import { createMockHandlers, mockKeys } from "@userapi/client/mocks";
 * setupServer(...createMockHandlers()).listen();   // then use mockKeys.admin as the API key
 * ```
 *
 * They answer as the service does: validation 422s with the same `errors[]`,
 * 404, 409 for a taken email (at `body.email`), ETags (also each user's
 * `etag`) with 304 and 412 (on PUT, PATCH, DELETE and the lifecycle moves),
 * cursor paging, 401 without a known key and 403 without the scope. Users
 * follow their lifecycle: suspend, reactivate, a soft DELETE that hides the
 * user until it is undeleted or purged, and show_deleted for users:admin. The client's suite sends the
 * same requests to them and to the real service, and checks every answer of
 * theirs against openapi.yaml.
 */
import { HttpResponse } from "msw";
import { createOpenApiHttp } from "openapi-msw";

import type { components, FieldError, paths, Problem, User } from "../index.js";
import { fixtureUsers } from "./fixtures.js";
import { exportUsers, listUsers, type Refusal } from "./search.js";
import { checkInteger, checkUserBody, sorted, validationDetail } from "./validate.js";

const etagOf = (version: number) => `"${version}"`;

export { fixtureUsers };

type Job = components["schemas"]["Job"];
type Webhook = components["schemas"]["Webhook"];

/** API keys the mocks know by default, by name. */
export const mockKeys = {
  admin: "uak_mockadmn_admin-key-for-the-userapi-mocks-000000000",
  reader: "uak_mockread_read-only-key-for-the-userapi-mocks-00000",
} as const;

export interface MockOptions {
  /** Prepended to every path; by default handlers match any origin ("*"). */
  baseUrl?: string;
  /** Known API keys and their scopes; by default mockKeys.admin (admin) and mockKeys.reader (users:read). */
  keys?: Record<string, string[]>;
  /** The store to serve; by default a new one seeded with fixtureUsers. */
  store?: MockStore;
}

/** What the mocks hold: users with their versions, jobs and webhooks. */
export class MockStore {
  readonly users = new Map<number, { user: User; version: number }>();
  readonly jobs = new Map<number, Job>();
  readonly webhooks = new Map<number, Webhook>();
  private nextUser = 1;
  private nextJob = 1;
  private nextWebhook = 1;

  constructor(seed: readonly Omit<User, "id" | "etag" | "state">[] = fixtureUsers) {
    for (const u of seed) this.insert(u);
  }

  insert(fields: Omit<User, "id" | "etag" | "state">): { user: User; version: number } {
    const row = { user: { id: this.nextUser++, ...fields, etag: etagOf(1), state: "active" as const }, version: 1 };
    this.users.set(row.user.id, row);
    return row;
  }

  /** Moves a user to a state, as the service does: a new version, and deleted_at set only while deleted. */
  setState(row: { user: User; version: number }, state: User["state"]): void {
    row.version++;
    const now = new Date().toISOString();
    const { deleted_at: _, ...rest } = row.user;
    row.user = { ...rest, state, etag: etagOf(row.version), updated_at: now, ...(state === "deleted" ? { deleted_at: now } : {}) };
  }

  byEmail(email: string): User | undefined {
    const want = email.toLowerCase();
    for (const { user } of this.users.values()) if (user.email.toLowerCase() === want) return user;
    return undefined;
  }

  addJob(kind: string): Job {
    const now = new Date().toISOString();
    const job: Job = { id: this.nextJob++, kind, state: "completed", attempt: 1, max_attempts: 25, created_at: now, scheduled_at: now, finished_at: now, errors: [] };
    this.jobs.set(job.id, job);
    return job;
  }

  addWebhook(fields: Omit<Webhook, "id" | "created_at">): Webhook {
    const hook: Webhook = { id: this.nextWebhook++, ...fields, created_at: new Date().toISOString() };
    this.webhooks.set(hook.id, hook);
    return hook;
  }
}

/** The problem type (and its title, as openapi.yaml's x-problem-types words it) the service gives each status. */
const kinds: Record<number, Pick<Problem, "type" | "title">> = {
  400: { type: "/problems/malformed-request", title: "Malformed request" },
  401: { type: "/problems/unauthorized", title: "Unauthorized" },
  403: { type: "/problems/forbidden", title: "Forbidden" },
  404: { type: "/problems/not-found", title: "Not Found" },
  409: { type: "/problems/conflict", title: "Conflict" },
  412: { type: "/problems/precondition-failed", title: "Precondition Failed" },
  415: { type: "/problems/unsupported-media-type", title: "Unsupported Media Type" },
  422: { type: "/problems/validation", title: "Invalid request" },
};

function problem(status: number, detail: string, extra: Partial<Problem> = {}, headers: Record<string, string> = {}): HttpResponse<Problem> {
  const body: Problem = { ...(kinds[status] ?? { type: "about:blank", title: "Error" }), status, detail, ...extra };
  return HttpResponse.json(body, { status, headers: { "Content-Type": "application/problem+json", ...headers } });
}

function invalid(errors: FieldError[]): HttpResponse<Problem> {
  const all = sorted(errors);
  return problem(422, validationDetail(all), { errors: all });
}

/** The 409 for a taken email, which names the field so that a form shows it there, and the deleted user who holds it, who can be undeleted. */
function emailTaken(owner: User): HttpResponse<Problem> {
  const kind = { type: "/problems/email-taken", title: "Email address taken" } as const;
  if (owner.state === "deleted") {
    return problem(409, `this email address belongs to deleted user ${owner.id}, who can be undeleted (POST /users/${owner.id}/undelete) until purged`, {
      ...kind,
      errors: [{ location: "body.email", message: "belongs to a deleted user" }],
    });
  }
  return problem(409, "a user with this email address already exists", { ...kind, errors: [{ location: "body.email", message: "is already taken by another user" }] });
}

const deletedUser = (id: number) => problem(404, `user ${id} is deleted; undelete it (POST /users/${id}/undelete) to see or change it`);
const suspendedUser = (id: number) =>
  problem(409, `user ${id} is suspended; reactivate it (POST /users/${id}/reactivate) before changing it`, { type: "/problems/user-suspended", title: "User suspended" } as const);

/** A lifecycle move: the states it applies to, where it leads, and why it applies to no other. */
interface Move {
  from: User["state"][];
  to: User["state"];
  appliesTo: string;
}
const moves = {
  suspend: { from: ["active"], to: "suspended", appliesTo: "only an active user can be suspended" },
  reactivate: { from: ["suspended"], to: "active", appliesTo: "only a suspended user can be reactivated (a deleted one is undeleted)" },
  undelete: { from: ["deleted"], to: "active", appliesTo: "only a deleted user can be undeleted" },
} satisfies Record<string, Move>;

/** The service's If-Match / If-None-Match test: a list of tags, `*`, weak tags only for If-None-Match. */
function matches(header: string, version: number, weak: boolean): boolean {
  return header.split(",").some((raw) => {
    let tag = raw.trim();
    if (tag === "*") return true;
    if (tag.startsWith("W/")) {
      if (!weak) return false;
      tag = tag.slice(2);
    }
    return tag === etagOf(version);
  });
}

const usersOf = (store: MockStore) => [...store.users.values()].map((r) => r.user);

/** Returns MSW request handlers for every operation of the API. */
export function createMockHandlers(options: MockOptions = {}) {
  const store = options.store ?? new MockStore();
  const keys = options.keys ?? { [mockKeys.admin]: ["admin"], [mockKeys.reader]: ["users:read"] };
  const http = createOpenApiHttp<paths>({ baseUrl: options.baseUrl ?? "*" });

  /** The scopes of the request's key (none without a known key). */
  function scopesOf(request: Request): string[] {
    const key = /^Bearer (\S+)$/i.exec(request.headers.get("Authorization") ?? "")?.[1];
    return (key === undefined ? undefined : keys[key]) ?? [];
  }

  const allows = (scopes: string[], scope: string) => scopes.includes(scope) || scopes.includes("admin");

  /** The 403 for a parameter (what) that only users:admin may send, or undefined when the key has it. */
  function needAdmin(request: Request, what: string): HttpResponse<Problem> | undefined {
    const scopes = scopesOf(request);
    if (allows(scopes, "users:admin")) return undefined;
    const key = /^Bearer (\S+)$/i.exec(request.headers.get("Authorization") ?? "")![1]!;
    return problem(403, `${what} needs the scope users:admin; the key ${key.slice(0, 12)} has ${scopes.join(", ")}`, {}, {
      "WWW-Authenticate": 'Bearer realm="userapi", error="insufficient_scope", scope="users:admin"',
    });
  }

  /** The answer to a list or export the caller may not have. */
  const refused = (request: Request, r: Refusal) => (Array.isArray(r) ? invalid(r) : needAdmin(request, "show_deleted=true")!);

  /** The 401 or 403 for a request without a key holding scope, or undefined when it may go on. */
  function refuse(request: Request, scope: string): HttpResponse<Problem> | undefined {
    const auth = request.headers.get("Authorization");
    if (!auth) {
      return problem(401, 'this operation needs an API key or an access token: send it as "Authorization: Bearer <key or token>"', {}, { "WWW-Authenticate": 'Bearer realm="userapi"' });
    }
    const key = /^Bearer (\S+)$/i.exec(auth)?.[1];
    const scopes = key === undefined ? undefined : keys[key];
    if (!scopes) {
      return problem(401, "the API key is not known", {}, { "WWW-Authenticate": 'Bearer realm="userapi", error="invalid_token"' });
    }
    if (!allows(scopes, scope)) {
      return problem(403, `this operation needs the scope ${scope}; the key ${key!.slice(0, 12)} has ${scopes.join(", ")}`, {}, {
        "WWW-Authenticate": `Bearer realm="userapi", error="insufficient_scope", scope="${scope}"`,
      });
    }
    return undefined;
  }

  /** The user of a path id, whatever its state, or the answer to give instead. */
  function userOf(raw: string): { user: User; version: number } | HttpResponse<Problem> {
    const id = checkInteger("path.id", raw, 1);
    if (Array.isArray(id)) return invalid(id);
    return store.users.get(id!) ?? problem(404, `user ${id} does not exist`);
  }

  /** The 412 when If-Match names another version of the user, else undefined. */
  function stale(request: Request, row: { user: User; version: number }): HttpResponse<Problem> | undefined {
    const ifMatch = request.headers.get("If-Match");
    return ifMatch !== null && !matches(ifMatch, row.version, false) ? problem(412, `user ${row.user.id} has changed since the ETag given in If-Match`) : undefined;
  }

  /** POST /users/{id}/suspend, /reactivate or /undelete: a user already where the move leads is answered as it is. */
  function move(request: Request, rawId: string, m: Move): HttpResponse<User | Problem> {
    const denied = refuse(request, "users:write");
    if (denied) return denied;
    const row = userOf(rawId);
    if (row instanceof HttpResponse) return row;
    const failed = stale(request, row);
    if (failed) return failed;
    if (row.user.state !== m.to) {
      if (!m.from.includes(row.user.state)) {
        return problem(409, `user ${row.user.id} is ${row.user.state}; ${m.appliesTo}`, { type: "/problems/state-conflict", title: "Not possible in the user's state" } as const);
      }
      store.setState(row, m.to);
    }
    return HttpResponse.json<User | Problem>(row.user, { headers: { ETag: etagOf(row.version) } });
  }

  async function jsonBody(request: Request): Promise<unknown | HttpResponse<Problem>> {
    if (!(request.headers.get("Content-Type") ?? "").startsWith("application/json")) {
      const ct = request.headers.get("Content-Type");
      return problem(415, ct ? `the body must be application/json, not ${ct.slice(0, 100)}` : "the body must be application/json, and the Content-Type header is missing");
    }
    try {
      return await request.json();
    } catch {
      return problem(400, "the body is not valid JSON");
    }
  }

  /** A PUT or PATCH: checks, If-Match, the email's owner, then the change. */
  async function edit(request: Request, rawId: string, partial: boolean) {
    const denied = refuse(request, "users:write");
    if (denied) return denied;
    const body = await jsonBody(request);
    if (body instanceof HttpResponse) return body;
    const errors = checkUserBody(body, partial);
    const id = checkInteger("path.id", rawId, 1);
    if (Array.isArray(id)) errors.push(...id);
    if (errors.length) return invalid(errors);
    const row = store.users.get(id as number);
    if (!row) return problem(404, `user ${id} does not exist`);
    const failed = stale(request, row);
    if (failed) return failed;
    if (row.user.state === "deleted") return deletedUser(row.user.id);
    if (row.user.state === "suspended") return suspendedUser(row.user.id);
    const fields = body as Partial<Pick<User, "name" | "email">>;
    const owner = fields.email === undefined ? undefined : store.byEmail(fields.email);
    if (owner && owner.id !== id) return emailTaken(owner);
    row.version++;
    row.user = { ...row.user, ...fields, etag: etagOf(row.version), updated_at: new Date().toISOString() };
    return HttpResponse.json(row.user, { headers: { ETag: etagOf(row.version) } });
  }

  return [
    http.get("/users", ({ request, query }) => {
      const denied = refuse(request, "users:read");
      if (denied) return denied;
      const page = listUsers(usersOf(store), query, { admin: allows(scopesOf(request), "users:admin") });
      return Array.isArray(page) || typeof page === "string" ? refused(request, page) : HttpResponse.json(page);
    }),

    http.get("/users/export", ({ request, query }) => {
      const file = refuse(request, "users:read") ?? exportUsers(usersOf(store), query, { admin: allows(scopesOf(request), "users:admin") });
      return Array.isArray(file) || typeof file === "string" ? refused(request, file) : file;
    }),

    http.post("/users", async ({ request }) => {
      const denied = refuse(request, "users:write");
      if (denied) return denied;
      const body = await jsonBody(request);
      if (body instanceof HttpResponse) return body;
      const errors = checkUserBody(body, false);
      if (errors.length) return invalid(errors);
      const { name, email } = body as { name: string; email: string };
      const owner = store.byEmail(email);
      if (owner) return emailTaken(owner);
      const now = new Date().toISOString();
      const row = store.insert({ name, email, created_at: now, updated_at: now });
      return HttpResponse.json(row.user, { status: 201, headers: { Location: `/users/${row.user.id}`, ETag: etagOf(row.version) } });
    }),

    http.post("/users/batch-get", async ({ request }) => {
      const denied = refuse(request, "users:read");
      if (denied) return denied;
      const body = await jsonBody(request);
      if (body instanceof HttpResponse) return body;
      const ids = (body as { ids?: unknown }).ids;
      if (!Array.isArray(ids)) return invalid([{ location: "body.ids", message: ids === undefined ? "is required" : "must be an array" }]);
      if (ids.length < 1) return invalid([{ location: "body.ids", message: "must have at least 1 item" }]);
      const seen = new Set<number>();
      const items: User[] = [];
      const missing: number[] = [];
      for (const id of ids as number[]) {
        if (seen.has(id)) continue;
        seen.add(id);
        const row = store.users.get(id);
        if (row && row.user.state !== "deleted") items.push(row.user);
        else missing.push(id);
      }
      return HttpResponse.json({ items, missing });
    }),

    http.get("/users/{id}", ({ request, params, query }) => {
      const denied = refuse(request, "users:read");
      if (denied) return denied;
      const showDeleted = query.get("show_deleted");
      if (showDeleted !== null && showDeleted !== "true" && showDeleted !== "false") return invalid([{ location: "query.show_deleted", message: "is invalid" }]);
      const forbidden = showDeleted === "true" ? needAdmin(request, "show_deleted=true") : undefined;
      if (forbidden) return forbidden;
      const row = userOf(params.id);
      if (row instanceof HttpResponse) return row;
      if (row.user.state === "deleted" && showDeleted !== "true") return deletedUser(row.user.id);
      const tag = etagOf(row.version);
      const ifNoneMatch = request.headers.get("If-None-Match");
      if (ifNoneMatch !== null && matches(ifNoneMatch, row.version, true)) return new HttpResponse(null, { status: 304, headers: { ETag: tag } });
      return HttpResponse.json(row.user, { headers: { ETag: tag } });
    }),

    http.put("/users/{id}", ({ request, params }) => edit(request, params.id, false)),
    http.patch("/users/{id}", ({ request, params }) => edit(request, params.id, true)),

    // A soft delete: the user is hidden until undeleted; purge=true (users:admin) erases it, whatever its state.
    http.delete("/users/{id}", ({ request, params, query }) => {
      const denied = refuse(request, "users:write");
      if (denied) return denied;
      const purge = query.get("purge");
      if (purge !== null && purge !== "true" && purge !== "false") return invalid([{ location: "query.purge", message: "is invalid" }]);
      const forbidden = purge === "true" ? needAdmin(request, "purge=true") : undefined;
      if (forbidden) return forbidden;
      const row = userOf(params.id);
      if (row instanceof HttpResponse) return row;
      const failed = stale(request, row);
      if (failed) return failed;
      if (purge === "true") store.users.delete(row.user.id);
      else if (row.user.state === "deleted") return deletedUser(row.user.id);
      else store.setState(row, "deleted");
      return new HttpResponse(null, { status: 204 });
    }),

    http.post("/users/{id}/suspend", ({ request, params }) => move(request, params.id, moves.suspend)),
    http.post("/users/{id}/reactivate", ({ request, params }) => move(request, params.id, moves.reactivate)),
    http.post("/users/{id}/undelete", ({ request, params }) => move(request, params.id, moves.undelete)),

    http.post("/users/{id}/process", ({ request, params }) => {
      const denied = refuse(request, "users:write");
      if (denied) return denied;
      const row = userOf(params.id);
      if (row instanceof HttpResponse) return row;
      if (row.user.state === "deleted") return deletedUser(row.user.id);
      const job = store.addJob("process_user");
      return HttpResponse.json(job, { status: 202, headers: { Location: `/jobs/${job.id}` } });
    }),

    http.get("/jobs/{id}", ({ request, params }) => {
      const denied = refuse(request, "jobs:read");
      if (denied) return denied;
      const id = checkInteger("path.id", params.id, 1);
      if (Array.isArray(id)) return invalid(id);
      return store.jobs.has(id!) ? HttpResponse.json(store.jobs.get(id!)!) : problem(404, `job ${id} does not exist`);
    }),

    http.get("/webhooks", ({ request }) => refuse(request, "webhooks:admin") ?? HttpResponse.json({ items: [...store.webhooks.values()] })),

    http.post("/webhooks", async ({ request }) => {
      const denied = refuse(request, "webhooks:admin");
      if (denied) return denied;
      const body = await jsonBody(request);
      if (body instanceof HttpResponse) return body;
      const { url, events, secret } = body as { url?: unknown; events?: unknown; secret?: unknown };
      const errors: FieldError[] = [];
      if (typeof url !== "string") errors.push({ location: "body.url", message: url === undefined ? "is required" : "must be a string" });
      if (!Array.isArray(events) || events.length === 0) errors.push({ location: "body.events", message: events === undefined ? "is required" : "must have at least 1 item" });
      if (errors.length) return invalid(errors);
      const hook = store.addWebhook({ url: url as string, events: events as Webhook["events"] });
      const withSecret = { ...hook, secret: typeof secret === "string" ? secret : "whsec_bW9jay1zZWNyZXQtMDAwMDAwMDAwMDAwMDAwMDAwMDA=" };
      return HttpResponse.json(withSecret, { status: 201, headers: { Location: `/webhooks/${hook.id}` } });
    }),

    http.get("/webhooks/{id}", ({ request, params }) => {
      const denied = refuse(request, "webhooks:admin");
      if (denied) return denied;
      const hook = store.webhooks.get(Number(params.id));
      return hook ? HttpResponse.json(hook) : problem(404, `webhook ${params.id} does not exist`);
    }),

    http.delete("/webhooks/{id}", ({ request, params }) => {
      const denied = refuse(request, "webhooks:admin");
      if (denied) return denied;
      return store.webhooks.delete(Number(params.id)) ? new HttpResponse(null, { status: 204 }) : problem(404, `webhook ${params.id} does not exist`);
    }),

    http.post("/webhooks/{id}/rotate-secret", ({ request, params }) => {
      const denied = refuse(request, "webhooks:admin");
      if (denied) return denied;
      if (!store.webhooks.has(Number(params.id))) return problem(404, `webhook ${params.id} does not exist`);
      const expires = new Date(Date.now() + 24 * 3_600_000).toISOString();
      return HttpResponse.json({ secret: "whsec_bW9jay1yb3RhdGVkLTAwMDAwMDAwMDAwMDAwMDAwMDA=", previous_secret_expires_at: expires });
    }),

    // Nothing is sent: the mocks answer as if the receiver took it at once.
    http.post("/webhooks/{id}/test", ({ request, params }) => {
      const denied = refuse(request, "webhooks:admin");
      if (denied) return denied;
      if (!store.webhooks.has(Number(params.id))) return problem(404, `webhook ${params.id} does not exist`);
      return HttpResponse.json({ message_id: `ping_mock-${params.id}`, status_code: 204, success: true, latency_ms: 1 });
    }),

    http.get("/webhooks/{id}/deliveries", ({ request, params }) => {
      const denied = refuse(request, "webhooks:admin");
      if (denied) return denied;
      return store.webhooks.has(Number(params.id)) ? HttpResponse.json({ items: [] }) : problem(404, `webhook ${params.id} does not exist`);
    }),

    http.get("/livez", () => HttpResponse.json({ status: "ok" as const })),
    http.get("/health", () => HttpResponse.json({ status: "ok" as const, checks: { mocks: { status: "up" as const } } })),
  ];
}
