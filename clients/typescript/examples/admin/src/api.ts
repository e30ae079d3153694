// The one client of the app, and where its API key is kept.
import { createUserApiClient, HttpError } from "@userapi/client";
import { createUserApiHooks } from "@userapi/client/react";

/** The service's base URL; with the mocks, this page's own origin, which they answer for. */
export const apiUrl =
  import.meta.env.MODE === "mock" ? location.origin : (import.meta.env.VITE_USERAPI_URL || "http://localhost:8080");

// Session storage: the key survives reloads but not the tab, and never
// ends up in the bundle.
const keyItem = "userapi.apiKey";

export const apiKey = {
  get: () => sessionStorage.getItem(keyItem) ?? "",
  set: (key: string) => (key ? sessionStorage.setItem(keyItem, key) : sessionStorage.removeItem(keyItem)),
};

export const api = createUserApiHooks(createUserApiClient(apiUrl, { apiKey: apiKey.get }));

/** A sentence for people about what went wrong with a call. */
export function describeError(error: unknown): string {
  if (error instanceof HttpError) return error.detail;
  // fetch rejects with a TypeError when the request never got an answer the
  // page may read: the service is down, or it refused this origin (CORS).
  if (error instanceof TypeError) {
    return `Could not reach ${apiUrl} (${error.message}). Is the service running, and does its USERAPI_CORS_ORIGINS include ${location.origin}?`;
  }
  return String(error);
}
