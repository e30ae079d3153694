// GET /users and GET /users/export of the mocks: search, filters, sort,
// cursors bound to their query, counts and downloads, as server/search.go,
// server/users.go, server/export.go and store/search.go do them. The
// service's checks come in its order: the spec's parameter checks all at
// once, then reversed time ranges, then the cursor.
//
// Two differences, both from the database: sorting by name or email
// compares code points, as the service's database does with its C.UTF-8
// collation; and accents are removed by Unicode decomposition plus a few
// letters that do not decompose, close to but not exactly PostgreSQL's
// unaccent.
import { HttpResponse } from "msw";

import type { FieldError, User } from "../index.js";
import { checkInteger, checkLength } from "./validate.js";

const sortFields = ["id", "name", "email", "created_at", "updated_at"] as const;
type SortField = (typeof sortFields)[number];
const sorts = sortFields.flatMap((f) => [f, `-${f}`]);
const countModes = ["estimated", "exact"];
const formats = ["csv", "ndjson"];
const states = ["active", "suspended", "deleted"];
const booleans = ["true", "false"];

/** The query string: URLSearchParams, or what the handlers get. */
interface Params {
  get(name: string): string | null;
}

/** What selects and orders users: the parameters GET /users and its export share. */
interface UserQuery {
  q: string;
  email?: string;
  createdAfter?: number;
  createdBefore?: number;
  updatedAfter?: number;
  updatedBefore?: number;
  field: SortField;
  desc: boolean;
  state?: User["state"];
  /** Deleted users are hidden unless this is set (which needs the users:admin scope). */
  showDeleted: boolean;
}

/** The message of a value outside an enum, as the service's validator words it. */
const oneOf = (values: readonly string[]) => `must be one of: ${values.join(", ")}`;

function checkEnum(loc: string, raw: string | null, values: readonly string[]): FieldError[] {
  return raw === null || values.includes(raw) ? [] : [{ location: loc, message: oneOf(values) }];
}

// RFC 3339 with a zone, as the service's validator takes it.
const dateTime = /^(\d{4})-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d+)?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)$/;

/** Checks a date-time parameter; returns the instant in milliseconds, or the errors. */
function checkDateTime(loc: string, raw: string | null): number | FieldError[] | undefined {
  if (raw === null) return undefined;
  const m = dateTime.exec(raw);
  // The day must exist in its month: 2026-02-30 does not.
  const ok = m !== null && new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]))).getUTCDate() === Number(m[3]);
  return ok ? Date.parse(raw.replace(/:60(?=\D)/, ":59")) : [{ location: loc, message: "must be a valid date-time" }];
}

/** The query of the parameters, or the 422's errors: the spec's checks, then reversed ranges. */
function userQuery(params: Params, errors: FieldError[]): UserQuery | FieldError[] {
  const q = params.get("q");
  const email = params.get("email");
  const sort = params.get("sort") ?? "id";
  errors.push(...checkLength("query.q", q, 1, 200), ...checkLength("query.email", email, 0, 254), ...checkEnum("query.sort", params.get("sort"), sorts));
  const state = params.get("state");
  errors.push(...checkEnum("query.state", state, states));
  const showDeleted = params.get("show_deleted");
  if (showDeleted !== null && !booleans.includes(showDeleted)) errors.push({ location: "query.show_deleted", message: "is invalid" });
  const times: (number | undefined)[] = [];
  for (const name of ["created_after", "created_before", "updated_after", "updated_before"]) {
    const t = checkDateTime(`query.${name}`, params.get(name));
    if (Array.isArray(t)) errors.push(...t);
    else times.push(t);
  }
  if (errors.length) return errors;
  const [createdAfter, createdBefore, updatedAfter, updatedBefore] = times;
  const reversed = (after?: number, before?: number) => after !== undefined && before !== undefined && before <= after;
  if (reversed(createdAfter, createdBefore)) errors.push({ location: "query.created_before", message: "must be later than created_after" });
  if (reversed(updatedAfter, updatedBefore)) errors.push({ location: "query.updated_before", message: "must be later than updated_after" });
  if (errors.length) return errors;
  const desc = sort.startsWith("-");
  return { q: q ?? "", email: email ?? undefined, createdAfter, createdBefore, updatedAfter, updatedBefore, field: (desc ? sort.slice(1) : sort) as SortField, desc,
    state: (state ?? undefined) as User["state"] | undefined, showDeleted: showDeleted === "true" };
}

// Letters unaccent turns into others that Unicode decomposition leaves alone.
const undecomposed: Record<string, string> = { ß: "ss", æ: "ae", Æ: "AE", œ: "oe", Œ: "OE", ø: "o", Ø: "O", ł: "l", Ł: "L", đ: "d", Đ: "D", ð: "d", Ð: "D", þ: "th", Þ: "TH", ı: "i" };

/** What search compares: accents removed, then lower case (the service's userapi_fold). */
function fold(s: string): string {
  return s
    .normalize("NFKD")
    .replace(/\p{M}/gu, "")
    .replace(/[ßæÆœŒøØłŁđĐðÐþÞı]/g, (c) => undecomposed[c]!)
    .toLowerCase();
}

function selects(q: UserQuery, u: User): boolean {
  const created = Date.parse(u.created_at);
  const updated = Date.parse(u.updated_at);
  const needle = fold(q.q);
  return (
    (q.showDeleted || u.state !== "deleted") &&
    (q.state === undefined || u.state === q.state) &&
    (q.email === undefined || u.email.toLowerCase() === q.email.toLowerCase()) &&
    (needle === "" || fold(u.name).includes(needle) || fold(u.email).includes(needle)) &&
    (q.createdAfter === undefined || created > q.createdAfter) &&
    (q.createdBefore === undefined || created < q.createdBefore) &&
    (q.updatedAfter === undefined || updated > q.updatedAfter) &&
    (q.updatedBefore === undefined || updated < q.updatedBefore)
  );
}

/** A place in an order: right after the user with this sort key and id. */
interface Position {
  id: number;
  key: string | number;
}

function positionOf(field: SortField, u: User): Position {
  switch (field) {
    case "id":
      return { id: u.id, key: u.id };
    case "name":
    case "email":
      return { id: u.id, key: u[field] };
    default:
      return { id: u.id, key: Date.parse(u[field]) };
  }
}

/** Compares strings by code point, as the service's database (C.UTF-8) does. */
function byCodePoint(a: string, b: string): number {
  const x = [...a];
  const y = [...b];
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = x[i]!.codePointAt(0)! - y[i]!.codePointAt(0)!;
    if (d !== 0) return d;
  }
  return x.length - y.length;
}

/** Orders positions by key, then id, both in q's direction. */
function compare(q: UserQuery, a: Position, b: Position): number {
  const byKey = typeof a.key === "string" ? byCodePoint(a.key, b.key as string) : a.key - (b.key as number);
  const d = byKey !== 0 ? byKey : a.id - b.id;
  return q.desc ? -d : d;
}

/** The users q selects, in its order. */
function select(users: Iterable<User>, q: UserQuery): User[] {
  return [...users].filter((u) => selects(q, u)).sort((a, b) => compare(q, positionOf(q.field, a), positionOf(q.field, b)));
}

// A cursor is base64url(check | JSON of the query's fingerprint and the
// position). As the service's, it fits only the query it was made for,
// and the check refuses one changed in any way.
const cursorModified = "is not a cursor this API returned; pass next_cursor unchanged";
const cursorOtherQuery = "belongs to a query with another q, filter or sort; send the same parameters with it, or start again without cursor";

function fingerprint(q: UserQuery): string {
  const time = (t?: number) => (t === undefined ? "-" : new Date(t).toISOString());
  return [q.field, q.desc ? "desc" : "asc", q.q, q.email === undefined ? "-" : `=${q.email.toLowerCase()}`, time(q.createdAfter), time(q.createdBefore), time(q.updatedAfter), time(q.updatedBefore), q.state ?? "-", q.showDeleted ? "show_deleted" : "-"].join("\0");
}

/** FNV-1a, 32 bits, in hex: enough to notice a changed cursor (it guards no secret). */
function check(s: string): string {
  let h = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(s)) h = Math.imul(h ^ byte, 0x01000193) >>> 0;
  return h.toString(16).padStart(8, "0");
}

function toBase64url(s: string): string {
  const bin = String.fromCharCode(...new TextEncoder().encode(s));
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function fromBase64url(s: string): string | undefined {
  if (!/^[A-Za-z0-9_-]*$/.test(s)) return undefined;
  try {
    const bin = atob(s.replace(/-/g, "+").replace(/_/g, "/"));
    return new TextDecoder("utf-8", { fatal: true }).decode(Uint8Array.from(bin, (c) => c.charCodeAt(0)));
  } catch {
    return undefined;
  }
}

function encodeCursor(q: UserQuery, p: Position): string {
  const body = JSON.stringify({ f: fingerprint(q), i: p.id, k: p.key });
  return toBase64url(check(body) + body);
}

/** The position a cursor holds in q's order, or why it holds none. */
function decodeCursor(q: UserQuery, cursor: string): Position | string {
  const raw = fromBase64url(cursor);
  const legacy = raw === undefined ? null : /^after:(\d+)$/.exec(raw);
  if (legacy) {
    // Cursors of earlier versions only ever walked users by id, filtered by email at most.
    const plain = q.field === "id" && !q.desc && q.q === "" && [q.createdAfter, q.createdBefore, q.updatedAfter, q.updatedBefore].every((t) => t === undefined) && q.state === undefined && !q.showDeleted;
    return plain ? { id: Number(legacy[1]), key: Number(legacy[1]) } : cursorModified;
  }
  if (raw === undefined || raw.length <= 8 || check(raw.slice(8)) !== raw.slice(0, 8)) return cursorModified;
  let c: { f?: unknown; i?: unknown; k?: unknown };
  try {
    c = JSON.parse(raw.slice(8));
  } catch {
    return cursorModified;
  }
  if (c.f !== fingerprint(q)) return cursorOtherQuery;
  const keyType = q.field === "name" || q.field === "email" ? "string" : "number";
  if (!Number.isSafeInteger(c.i) || (c.i as number) < 1 || typeof c.k !== keyType) return cursorModified;
  return { id: c.i as number, key: c.k as string | number };
}

/** What the caller may see: deleted users need the users:admin scope. */
export interface Viewer {
  admin: boolean;
}

/** The answer to a list or export that asks for deleted users: the 403 (the caller lacks users:admin) or the 422's errors. */
export type Refusal = "needs users:admin" | FieldError[];

/** Checks, after the parameters, that the caller may see what the query asks for. */
function refusal(q: UserQuery, viewer: Viewer): Refusal | undefined {
  if (q.showDeleted) return viewer.admin ? undefined : "needs users:admin";
  if (q.state === "deleted") return [{ location: "query.state", message: "deleted users are listed only with show_deleted=true" }];
  return undefined;
}

/** A page of GET /users, as the schema UserPage has it. */
export interface MockUserPage {
  items: User[];
  next_cursor: string | null;
  total?: number;
  total_is_estimate?: boolean;
}

/** Answers GET /users over users: the page, or the errors of its 422. */
export function listUsers(users: Iterable<User>, params: Params, viewer: Viewer): MockUserPage | Refusal {
  const errors: FieldError[] = [];
  const limit = checkInteger("query.limit", params.get("limit"), 1, 1000);
  const offset = checkInteger("query.offset", params.get("offset"), 0, 10000);
  for (const v of [limit, offset]) if (Array.isArray(v)) errors.push(...v);
  const cursor = params.get("cursor");
  errors.push(...checkLength("query.cursor", cursor, 1, 2048), ...checkEnum("query.count", params.get("count"), countModes));
  const q = userQuery(params, errors);
  if (Array.isArray(q)) return q;
  const refused = refusal(q, viewer);
  if (refused) return refused;
  const selected = select(users, q);
  let rows = selected;
  if (cursor !== null) {
    if (offset !== undefined) return [{ location: "query.cursor", message: "cannot be combined with offset" }];
    const after = decodeCursor(q, cursor);
    if (typeof after === "string") return [{ location: "query.cursor", message: after }];
    rows = rows.filter((u) => compare(q, positionOf(q.field, u), after) > 0);
  } else if (offset !== undefined) {
    rows = rows.slice(offset as number);
  }
  const n = (limit as number | undefined) ?? 100;
  const items = rows.slice(0, n);
  const page: MockUserPage = { items, next_cursor: rows.length > n ? encodeCursor(q, positionOf(q.field, items[n - 1]!)) : null };
  const count = params.get("count");
  if (count !== null) {
    // The mocks always know: "estimated" gets the exact number, marked as the estimate it was asked for.
    page.total = selected.length;
    page.total_is_estimate = count === "estimated";
  }
  return page;
}

/** Keeps a CSV cell from being run as a formula, as the service does. */
const spreadsheetText = (s: string) => (/^[=+\-@\t\r]/.test(s) ? `'${s}` : s);

/** Quotes a CSV cell when Go's encoding/csv, which the service writes with, does. */
function csvCell(s: string): string {
  return /[",\r\n]|^\s/u.test(s) || s === "\\." ? `"${s.replace(/"/g, '""')}"` : s;
}

/** Answers GET /users/export over users: the download, or the errors of its 422. */
export function exportUsers(users: Iterable<User>, params: Params, viewer: Viewer): HttpResponse<string> | Refusal {
  const errors = checkEnum("query.format", params.get("format"), formats);
  const q = userQuery(params, errors);
  if (Array.isArray(q)) return q;
  const refused = refusal(q, viewer);
  if (refused) return refused;
  const rows = select(users, q);
  const csv = params.get("format") === "csv";
  const body = csv
    ? ["id,name,email,created_at,updated_at,state", ...rows.map((u) => [String(u.id), spreadsheetText(u.name), spreadsheetText(u.email), u.created_at, u.updated_at, u.state].map(csvCell).join(","))].map((l) => `${l}\r\n`).join("")
    : rows.map((u) => `${JSON.stringify(Object.fromEntries(Object.entries(u).sort(([a], [b]) => (a < b ? -1 : 1))))}\n`).join(""); // the whole user, keys in the service's order
  return new HttpResponse(body, {
    headers: {
      "Content-Type": csv ? "text/csv; charset=utf-8" : "application/x-ndjson",
      "Content-Disposition": `attachment; filename="users.${csv ? "csv" : "ndjson"}"`,
    },
  });
}
