/**
 * Timestamps travel as RFC 3339 strings (`"2026-01-02T03:04:05Z"`) and the
 * generated types keep them as strings, so that what the client holds is
 * what the server sent, and caches and mocks can compare it byte for byte.
 * These two helpers are the one way to get `Date`s from them.
 */

/** A timestamp's type as a Date (distributes, so `string | null` becomes `Date | null`). */
type AsDate<V> = V extends string ? Date : V;

/** T with its timestamp fields (those named `*_at`) as `Date`s. */
export type WithDates<T> = { [K in keyof T]: K extends `${string}_at` ? AsDate<T[K]> : T[K] };

/** Reads one RFC 3339 timestamp; throws on anything else. */
export function toDate(rfc3339: string): Date {
  const d = new Date(rfc3339);
  if (Number.isNaN(d.getTime())) throw new RangeError(`not an RFC 3339 timestamp: ${JSON.stringify(rfc3339)}`);
  return d;
}

/**
 * Returns a copy of value (a user, a job, a webhook, ...) with every field
 * named `*_at` turned into a `Date`: `parseDates(user).created_at.getFullYear()`.
 */
export function parseDates<T extends object>(value: T): WithDates<T> {
  const out: Record<string, unknown> = { ...(value as Record<string, unknown>) };
  for (const [k, v] of Object.entries(out)) {
    if (k.endsWith("_at") && typeof v === "string") out[k] = toDate(v);
  }
  return out as WithDates<T>;
}
