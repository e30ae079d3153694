/**
 * Typed client for userapi. Types come from `src/schema.ts`, which is
 * generated from the service's openapi.yaml (`npm run generate`); the
 * runtime is openapi-fetch.
 *
 * Every error the service answers is an RFC 9457 problem. The client throws
 * it as a {@link ProblemError}; any other answer that is neither 2xx nor 304
 * (a proxy's 502 page, say) as an {@link HttpError}. So a call that returns
 * has succeeded (2xx, or 304 for a conditional read).
 */
import createClient, { type Client, type Middleware } from "openapi-fetch";

import type { components, operations, paths } from "./schema.js";

export type { components, operations, paths };

/** A user, as the API returns it. */
export type User = components["schemas"]["User"];
/** An error body (RFC 9457). */
export type Problem = components["schemas"]["Problem"];
/** Every kind of problem the service answers with; each is also a page on the service (`GET /problems/{kind}`). */
export type ProblemType = Problem["type"];
/** One bad field of a request, in a 422 problem. */
export type FieldError = components["schemas"]["FieldError"];
/** One change in the audit log (`GET /audit`): who made it, and the fields it changed. */
export type AuditEntry = components["schemas"]["AuditEntry"];

/** The typed client: `GET`, `POST`, `PUT`, `PATCH`, `DELETE` on the API's paths. */
export type UserApiClient = Client<paths>;

/**
 * An answer that is neither 2xx nor 304. Answers of the service itself are
 * problems, thrown as the subclass {@link ProblemError}; an HttpError that is
 * not one came from something in between (a proxy's 502 page, a gateway's
 * timeout), and `body` holds the start of what it sent.
 *
 * Every HttpError also has the fields of a {@link Problem} (`type`, `title`,
 * `status`, `detail`, `errors`): a non-problem answer reads as the
 * `about:blank` problem of its status (RFC 9457, section 4.2.1). So code
 * typed against the spec's error bodies, such as the hooks of
 * `@userapi/client/react`, is right whichever one it gets.
 */
export class HttpError extends Error implements Problem {
  /** The HTTP status. */
  readonly status: number;
  /** The whole response, for its headers (Retry-After, RateLimit-*, ...). */
  readonly response: Response;
  /** The first 1,000 characters of the body, for logs. */
  readonly body: string;
  /** The kind of problem, such as `/problems/email-taken`: branch on this, not on `title` or `detail`. */
  readonly type: ProblemType;
  readonly title: string;
  readonly detail: string;
  readonly instance?: string;
  readonly request_id?: string;
  readonly errors?: FieldError[];

  constructor(response: Response, body: string, problem?: Problem) {
    const p = problem ?? {
      type: "about:blank",
      title: response.statusText || `HTTP ${response.status}`,
      status: response.status,
      detail: `${response.status} ${response.statusText || "error"} from ${response.url || "the server"}, not from userapi (its answers are problems)`,
    };
    super(problem ? `${p.status} ${p.title}: ${p.detail}` : p.detail);
    this.name = "HttpError";
    this.status = response.status;
    this.response = response;
    this.body = body.slice(0, 1000);
    this.type = p.type;
    this.title = p.title;
    this.detail = p.detail;
    if (p.instance !== undefined) this.instance = p.instance;
    if (p.request_id !== undefined) this.request_id = p.request_id;
    if (p.errors !== undefined) this.errors = p.errors;
  }

  /** Seconds to wait before retrying a 429 or 503, when the answer said. */
  get retryAfter(): number | undefined {
    const v = this.response.headers.get("Retry-After");
    return v === null ? undefined : Number(v);
  }

  /** True for a 412: the resource changed since the ETag sent in If-Match. */
  get isConflict(): boolean {
    return this.status === 412;
  }

  /** The bad fields of a 422, by location (`body.email`, `query.limit`). */
  get fieldErrors(): Record<string, string> {
    return Object.fromEntries((this.errors ?? []).map((e) => [e.location, e.message]));
  }
}

/** An error answer of the service, with its problem body. */
export class ProblemError extends HttpError {
  /** The problem body as the service sent it. */
  readonly problem: Problem;

  constructor(problem: Problem, response: Response, body = JSON.stringify(problem)) {
    super(response, body, problem);
    this.name = "ProblemError";
    this.problem = problem;
  }
}

/** Options for {@link createUserApiClient}. */
export interface UserApiClientOptions {
  /**
   * The API key, sent as `Authorization: Bearer <key>`. Every operation under
   * `/users`, `/jobs` and `/webhooks` needs one with the right scope. A
   * function is called for every request, for a key that can change (one
   * typed into a form, say).
   */
  apiKey?: string | (() => string | null | undefined);
  /**
   * Returns an access token of the identity provider the service accepts
   * (what a browser app uses instead of an API key), sent as
   * `Authorization: Bearer <token>`. It is awaited before every request, so
   * it can hand out a token it has just refreshed. When it resolves to
   * nothing, `apiKey` (if given) is sent instead.
   */
  getToken?: () => Promise<string | null | undefined>;
  /** Headers sent with every request. */
  headers?: Record<string, string>;
  /** A fetch to use instead of the global one. */
  fetch?: (input: Request) => Promise<Response>;
}

/**
 * Throws every answer that is neither 2xx nor 304: problems as ProblemError,
 * anything else (an HTML error page, an empty 502) as HttpError.
 */
const errorsAsExceptions: Middleware = {
  async onResponse({ response }) {
    if (response.ok || response.status === 304) return undefined;
    const text = await response.clone().text();
    const type = response.headers.get("Content-Type") ?? "";
    if (type.startsWith("application/problem+json")) {
      let problem: Problem | undefined;
      try {
        problem = JSON.parse(text) as Problem;
      } catch {
        // not JSON after all: reported below as a plain HttpError
      }
      if (problem && typeof problem.status === "number") throw new ProblemError(problem, response, text);
    }
    throw new HttpError(response, text);
  },
};

/**
 * Returns a client for the service at baseUrl, such as
 * `http://localhost:8080`.
 */
export function createUserApiClient(baseUrl: string, options: UserApiClientOptions = {}): UserApiClient {
  const { apiKey, getToken } = options;
  const client = createClient<paths>({ baseUrl, headers: options.headers, fetch: options.fetch });
  if (apiKey || getToken) {
    client.use({
      async onRequest({ request }) {
        const credential = (await getToken?.()) || (typeof apiKey === "function" ? apiKey() : apiKey);
        if (credential) request.headers.set("Authorization", `Bearer ${credential}`);
        return request;
      },
    });
  }
  client.use(errorsAsExceptions);
  return client;
}

export { parseDates, toDate, type WithDates } from "./dates.js";
export { streamEvents, type Event, type StreamEventsOptions } from "./events.js";
