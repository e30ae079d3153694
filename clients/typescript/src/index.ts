/**
 * Typed client for userapi. Types come from `src/schema.ts`, which is
 * generated from the service's openapi.yaml (`npm run generate`); the
 * runtime is openapi-fetch.
 *
 * Every error the service answers is an RFC 9457 problem. The client throws
 * it as a {@link ProblemError}, so a call that returns has succeeded
 * (2xx, or 304 for a conditional read).
 */
import createClient, { type Client, type Middleware } from "openapi-fetch";

import type { components, operations, paths } from "./schema.js";

export type { components, operations, paths };

/** A user, as the API returns it. */
export type User = components["schemas"]["User"];
/** An error body (RFC 9457). */
export type Problem = components["schemas"]["Problem"];
/** One bad field of a request, in a 422 problem. */
export type FieldError = components["schemas"]["FieldError"];

/** The typed client: `GET`, `POST`, `PUT`, `PATCH`, `DELETE` on the API's paths. */
export type UserApiClient = Client<paths>;

/** An error answer of the service, with its problem body. */
export class ProblemError extends Error {
  /** The HTTP status. */
  readonly status: number;
  /** The problem body as the service sent it. */
  readonly problem: Problem;
  /** The whole response, for its headers (Retry-After, RateLimit-*, ...). */
  readonly response: Response;

  constructor(problem: Problem, response: Response) {
    super(`${problem.status} ${problem.title}: ${problem.detail}`);
    this.name = "ProblemError";
    this.status = problem.status;
    this.problem = problem;
    this.response = response;
  }

  /** The bad fields of a 422, by location (`body.email`, `query.limit`). */
  get fieldErrors(): Record<string, string> {
    return Object.fromEntries((this.problem.errors ?? []).map((e) => [e.location, e.message]));
  }

  /** Seconds to wait before retrying a 429 or 503, when the service said. */
  get retryAfter(): number | undefined {
    const v = this.response.headers.get("Retry-After");
    return v === null ? undefined : Number(v);
  }
}

/** Options for {@link createUserApiClient}. */
export interface UserApiClientOptions {
  /**
   * The API key, sent as `Authorization: Bearer <key>`. Every operation under
   * `/users`, `/jobs` and `/webhooks` needs one with the right scope.
   */
  apiKey?: string;
  /** Headers sent with every request. */
  headers?: Record<string, string>;
  /** A fetch to use instead of the global one. */
  fetch?: (input: Request) => Promise<Response>;
}

/** Throws problem+json answers as ProblemError. */
const problemsAsErrors: Middleware = {
  async onResponse({ response }) {
    const type = response.headers.get("Content-Type") ?? "";
    if (!response.ok && type.startsWith("application/problem+json")) {
      throw new ProblemError((await response.clone().json()) as Problem, response);
    }
    return undefined;
  },
};

/**
 * Returns a client for the service at baseUrl, such as
 * `http://localhost:8080`.
 */
export function createUserApiClient(baseUrl: string, options: UserApiClientOptions = {}): UserApiClient {
  const headers = { ...options.headers };
  if (options.apiKey) headers.Authorization = `Bearer ${options.apiKey}`;
  const client = createClient<paths>({ baseUrl, headers, fetch: options.fetch });
  client.use(problemsAsErrors);
  return client;
}
