// The React hooks against a real userapi, rendered by React DOM in
// happy-dom: paging through cursors, the cache after each mutation, If-Match
// from the cache, and a 412 as a ConflictError.
import assert from "node:assert/strict";
import { after, afterEach, before, describe, it } from "node:test";

import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { createElement, type ReactNode } from "react";

import { createUserApiClient, ProblemError, type User, type UserApiClient } from "../src/index.js";
import { ConflictError, createUserApiHooks, userApiKeys, type UserApiHooks } from "../src/react.js";
import { startHarness, type Harness } from "./harness.js";

// React DOM needs a document; the client keeps Node's own fetch and its
// Request/Response, which happy-dom would otherwise replace.
// (Imported untyped: happy-dom's types need a newer @types/node than Node 20's.)
const keep = { fetch, Request, Response, Headers, FormData, Blob, AbortController, AbortSignal, URL, URLSearchParams, ReadableStream, WritableStream, TransformStream, TextEncoder, TextDecoder };
const { GlobalRegistrator } = (await import("@happy-dom/global-registrator" as string)) as { GlobalRegistrator: { register(): void; unregister(): Promise<void> } };
GlobalRegistrator.register();
Object.assign(globalThis, keep, { IS_REACT_ACT_ENVIRONMENT: true });
const { renderHook, waitFor, act, cleanup, configure } = await import("@testing-library/react");
// A loaded CI machine answers slower than waitFor's default second.
configure({ asyncUtilTimeout: 10_000 });

let h: Harness;
before(async () => {
  h = await startHarness();
});
// Unmount every hook and stop its queries before the next test (and before
// the document goes away): a refetch started by a mutation must not outlive
// its test.
const clients: QueryClient[] = [];
afterEach(async () => {
  cleanup();
  for (const qc of clients.splice(0)) {
    await qc.cancelQueries();
    qc.clear();
  }
});
after(async () => {
  await h?.stop();
  await GlobalRegistrator.unregister();
});

let n = 0;
const email = () => `hooks-${Date.now()}-${++n}@example.com`;

/** Hooks over a client with its own key that records each request it sends. */
function setup(): { hooks: UserApiHooks; api: UserApiClient; sent: Request[]; qc: QueryClient; wrapper: (p: { children: ReactNode }) => ReactNode } {
  const sent: Request[] = [];
  const api = createUserApiClient(h.baseUrl, {
    apiKey: h.key("admin"),
    fetch: (r) => {
      sent.push(r.clone());
      return fetch(r);
    },
  });
  const qc = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  clients.push(qc);
  const wrapper = ({ children }: { children: ReactNode }) => createElement(QueryClientProvider, { client: qc }, children);
  return { hooks: createUserApiHooks(api), api, sent, qc, wrapper };
}

describe("useUsersInfinite", () => {
  it("asks the first page without a cursor, follows next_cursor, and stops at null", async () => {
    const { hooks, api, sent, wrapper } = setup();
    const mine: number[] = [];
    for (let i = 0; i < 3; i++) mine.push((await api.POST("/users", { body: { name: `Pager ${i}`, email: email() } })).data!.id);
    sent.length = 0;

    const { result } = renderHook(() => hooks.useUsersInfinite({ limit: 2 }), { wrapper });
    await waitFor(() => assert.equal(result.current.status, "success"));
    assert.equal(new URL(sent[0]!.url).search, "?limit=2", "the first page has no cursor");
    while (result.current.hasNextPage) {
      await act(() => result.current.fetchNextPage());
    }
    const pages = result.current.data!.pages;
    assert.equal(pages.at(-1)!.next_cursor, null);
    assert.equal(pages.length, sent.length, "one request per page, none after next_cursor was null");
    assert.equal(new URL(sent[1]!.url).searchParams.get("cursor"), pages[0]!.next_cursor);
    const ids = pages.flatMap((p) => p.items.map((u) => u.id));
    for (const id of mine) assert.ok(ids.includes(id), `user ${id} is listed`);
  });
});

describe("mutations", () => {
  it("a create refetches lists; an edit sends the cached ETag and updates the detail query", async () => {
    const { hooks, sent, qc, wrapper } = setup();
    const { result } = renderHook(
      () => ({ list: hooks.$api.useQuery("get", "/users", { params: { query: { limit: 1000 } } }), create: hooks.useCreateUser(), update: hooks.useUpdateUser() }),
      { wrapper },
    );
    await waitFor(() => assert.ok(result.current.list.data));

    let ada!: User;
    await act(async () => {
      ada = await result.current.create.mutateAsync({ body: { name: "Ada", email: email() } });
    });
    await waitFor(() => assert.ok(result.current.list.data!.items.some((u) => u.id === ada.id), "the new user is in the list"));
    const etag = hooks.etagOf(ada.id);
    assert.ok(etag, "the create's ETag is held");
    assert.deepEqual(qc.getQueryData(userApiKeys.user(ada.id)), ada);

    sent.length = 0;
    await act(async () => {
      await result.current.update.mutateAsync({ id: ada.id, body: { name: "Ada King" } });
    });
    assert.equal(sent[0]!.headers.get("If-Match"), etag, "the update sends the held ETag");
    assert.equal((qc.getQueryData(userApiKeys.user(ada.id)) as User).name, "Ada King", "the detail query holds the answer");
    assert.notEqual(hooks.etagOf(ada.id), etag, "and its new ETag is held");
  });

  it("a 412 is a ConflictError with the current version, which the cache then shows", async () => {
    const { hooks, api, qc, wrapper } = setup();
    const other = h.client();
    const ada = (await api.POST("/users", { body: { name: "Ada", email: email() } })).data!;
    const { result } = renderHook(() => ({ user: hooks.useUser(ada.id), update: hooks.useUpdateUser() }), { wrapper });
    await waitFor(() => assert.ok(result.current.user.data));

    await other.PATCH("/users/{id}", { params: { path: { id: ada.id } }, body: { name: "Changed elsewhere" } });
    const err = await act(() => result.current.update.mutateAsync({ id: ada.id, body: { name: "Mine" } }).catch((e: unknown) => e));
    assert.ok(err instanceof ConflictError, `got ${String(err)}`);
    assert.equal(err.status, 412);
    assert.equal(err.current?.name, "Changed elsewhere");
    assert.equal((qc.getQueryData(userApiKeys.user(ada.id)) as User).name, "Changed elsewhere");

    // Sending it again now overwrites the other change on purpose.
    await act(async () => {
      await result.current.update.mutateAsync({ id: ada.id, body: { name: "Mine" } });
    });
    await waitFor(() => assert.equal(result.current.user.data?.name, "Mine"));
  });

  it("a delete with a list row's etag is refused as a ConflictError once the user changed", async () => {
    const { hooks, api, sent, wrapper } = setup();
    const ada = (await api.POST("/users", { body: { name: "Ada", email: email() } })).data!;
    const row = (await api.GET("/users", { params: { query: { email: ada.email } } })).data!.items[0]!;
    assert.equal(row.etag, ada.etag, "a list row carries the etag of the create");
    await h.client().PATCH("/users/{id}", { params: { path: { id: ada.id } }, body: { name: "Changed elsewhere" } });

    const { result } = renderHook(() => hooks.useDeleteUser(), { wrapper });
    const err = await act(() => result.current.mutateAsync({ id: ada.id, ifMatch: row.etag }).catch((e: unknown) => e));
    assert.equal(sent.at(-2)?.headers.get("If-Match"), row.etag, "the delete sends the row's etag");
    assert.ok(err instanceof ConflictError, `got ${String(err)}`);
    assert.equal(err.current?.name, "Changed elsewhere");
    await act(async () => {
      await result.current.mutateAsync({ id: ada.id, ifMatch: err.current!.etag });
    });
    const gone = await api.GET("/users/{id}", { params: { path: { id: ada.id } } }).catch((e: unknown) => e);
    assert.ok(gone instanceof ProblemError && gone.status === 404);
  });

  it("a delete drops the detail query; errors are ProblemErrors", async () => {
    const { hooks, api, qc, wrapper } = setup();
    const ada = (await api.POST("/users", { body: { name: "Ada", email: email() } })).data!;
    const { result } = renderHook(() => ({ del: hooks.useDeleteUser(), missing: hooks.useUser(987654321) }), { wrapper });
    qc.setQueryData(userApiKeys.user(ada.id), ada);
    await act(async () => {
      await result.current.del.mutateAsync({ id: ada.id });
    });
    assert.equal(qc.getQueryData(userApiKeys.user(ada.id)), undefined);
    await waitFor(() => assert.equal(result.current.missing.status, "error"));
    assert.ok(result.current.missing.error instanceof ProblemError);
    assert.equal(result.current.missing.error.status, 404);
  });
});
