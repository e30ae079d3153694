/**
 * React Query (TanStack Query v5) hooks for userapi.
 *
 * `createUserApiHooks(client)` returns:
 * - `$api`: openapi-react-query's typed `useQuery`, `useSuspenseQuery`,
 *   `useMutation` and `queryOptions` for every operation of the API;
 * - hooks for users that keep the cache right: `useUser`, `useUsersInfinite`
 *   (pages through `next_cursor`), `useCreateUser`, `useUpdateUser`,
 *   `useReplaceUser`, `useDeleteUser`.
 *
 * Errors are what the client throws: a {@link ProblemError} for every answer
 * of the service, an {@link HttpError} for anything else in between. Edits
 * send `If-Match` with the ETag of the last version of the user the client
 * saw, and a 412 is thrown as a {@link ConflictError} holding the current
 * version, for the UI to resolve.
 */
import {
  useInfiniteQuery,
  useMutation,
  useQueryClient,
  type InfiniteData,
  type QueryClient,
  type UseInfiniteQueryResult,
  type UseMutationResult,
  type UseQueryResult,
} from "@tanstack/react-query";
import createQueryClient, { type OpenapiQueryClient } from "openapi-react-query";

import { HttpError, ProblemError, type components, type paths, type User, type UserApiClient } from "./index.js";

export { HttpError, ProblemError };

/** One page of users. */
export type UserPage = components["schemas"]["UserPage"];
/** The query of `GET /users` that a list keeps across its pages. */
export type UsersListParams = Omit<NonNullable<paths["/users"]["get"]["parameters"]["query"]>, "cursor" | "offset">;
export type UserCreate = components["schemas"]["UserCreate"];
export type UserPatch = components["schemas"]["UserPatch"];
export type UserReplace = components["schemas"]["UserReplace"];

/**
 * A 412 on an edit: someone changed the user since the version this client
 * holds. `current` is the user as it is now (undefined when it was deleted
 * meanwhile); its ETag is now the one the client holds, so sending the edit
 * again overwrites that change on purpose.
 */
export class ConflictError extends ProblemError {
  readonly current: User | undefined;

  constructor(cause: ProblemError, current: User | undefined) {
    super(cause.problem, cause.response, cause.body);
    this.name = "ConflictError";
    this.current = current;
  }
}

/** The query keys the hooks use, for code that reads or changes the cache itself. */
export const userApiKeys = {
  /** Every list of users (plain and infinite) starts with this. */
  lists: ["get", "/users"] as const,
  /** The detail query of one user, as `$api.useQuery("get", "/users/{id}", ...)` makes it. */
  user: (id: number) => ["get", "/users/{id}", { params: { path: { id } } }] as const,
  /** The infinite list for params. */
  usersInfinite: (params: UsersListParams) => ["get", "/users", { params: { query: params } }, "infinite"] as const,
};

export interface UserApiHooks {
  /** openapi-react-query over the client: typed hooks for every operation. */
  $api: OpenapiQueryClient<paths>;
  /** The ETag of the last version of user id this client saw, if any. */
  etagOf(id: number): string | undefined;
  /** One user, in the detail query the edits keep up to date. */
  useUser(id: number): UseQueryResult<User, HttpError>;
  /** Every user, a page at a time: the first page without a cursor, then each `next_cursor` until it is null. */
  useUsersInfinite(params?: UsersListParams): UseInfiniteQueryResult<InfiniteData<UserPage, string | null>, HttpError>;
  /** Creates a user; lists refetch, and the new user's detail query is filled. */
  useCreateUser(): UseMutationResult<User, HttpError, { body: UserCreate; idempotencyKey?: string }>;
  /** Changes some fields; sends If-Match (the held ETag unless ifMatch is given, such as a list row's `etag`); updates the detail query and refetches lists. */
  useUpdateUser(): UseMutationResult<User, HttpError, { id: number; body: UserPatch; ifMatch?: string }>;
  /** Replaces every field; otherwise as useUpdateUser. */
  useReplaceUser(): UseMutationResult<User, HttpError, { id: number; body: UserReplace; ifMatch?: string }>;
  /** Deletes a user (only at the version ifMatch names, when given: a 412 is then a ConflictError); drops its detail query and refetches lists. */
  useDeleteUser(): UseMutationResult<void, HttpError, { id: number; ifMatch?: string }>;
}

const userPath = /\/users\/(\d+)$/;

/**
 * Returns the hooks for client. Call it once, outside components, and use the
 * hooks inside a `QueryClientProvider`.
 */
export function createUserApiHooks(client: UserApiClient): UserApiHooks {
  // The ETag of each user, from every answer that carries one. Kept beside
  // the query cache because openapi-react-query keeps only bodies there.
  const etags = new Map<number, string>();
  client.use({
    onResponse({ request, response }) {
      const path = new URL(request.url).pathname;
      const id = Number(userPath.exec(path)?.[1] ?? userPath.exec(response.headers.get("Location") ?? "")?.[1]);
      if (!id) return undefined;
      const etag = response.headers.get("ETag");
      if (request.method === "DELETE" && response.status === 204) etags.delete(id);
      else if (etag && (response.ok || response.status === 304)) etags.set(id, etag);
      return undefined;
    },
  });

  const $api = createQueryClient(client);

  function edited(qc: QueryClient, user: User) {
    qc.setQueryData(userApiKeys.user(user.id), user);
    return qc.invalidateQueries({ queryKey: userApiKeys.lists });
  }

  /** Runs an edit, turning a 412 into a ConflictError with the current version. */
  async function edit<T>(id: number, send: (ifMatch: Record<string, string>) => Promise<T>, ifMatch?: string): Promise<T> {
    const tag = ifMatch ?? etags.get(id);
    try {
      return await send(tag ? { "If-Match": tag } : {});
    } catch (e) {
      if (!(e instanceof ProblemError) || e.status !== 412) throw e;
      const current = await client
        .GET("/users/{id}", { params: { path: { id } } })
        .then((r) => r.data)
        .catch((err: unknown) => {
          if (err instanceof ProblemError && err.status === 404) return undefined;
          throw err;
        });
      throw new ConflictError(e, current);
    }
  }

  return {
    $api,
    etagOf: (id) => etags.get(id),

    // Errors are HttpErrors at run time; openapi-react-query types them as the spec's Problem, which HttpError implements.
    useUser: (id) => $api.useQuery("get", "/users/{id}", { params: { path: { id } } }) as UseQueryResult<User, HttpError>,

    useUsersInfinite(params = {}) {
      return useInfiniteQuery<UserPage, HttpError, InfiniteData<UserPage, string | null>, readonly unknown[], string | null>({
        queryKey: userApiKeys.usersInfinite(params),
        initialPageParam: null,
        async queryFn({ pageParam, signal }) {
          // The first page has no cursor at all: the API refuses an empty or made-up one.
          const query = pageParam === null ? params : { ...params, cursor: pageParam };
          const { data } = await client.GET("/users", { params: { query }, signal });
          return data!;
        },
        getNextPageParam: (last) => last.next_cursor,
      });
    },

    useCreateUser() {
      const qc = useQueryClient();
      return useMutation({
        async mutationFn({ body, idempotencyKey }) {
          const header = idempotencyKey ? { "Idempotency-Key": idempotencyKey } : {};
          const { data } = await client.POST("/users", { params: { header }, body });
          return data!;
        },
        onSuccess: (user) => edited(qc, user),
      });
    },

    useUpdateUser() {
      const qc = useQueryClient();
      return useMutation({
        mutationFn: ({ id, body, ifMatch }) =>
          edit(id, async (header) => (await client.PATCH("/users/{id}", { params: { path: { id }, header }, body })).data!, ifMatch),
        onSuccess: (user) => edited(qc, user),
        onError: (e, { id }) => conflictSeen(qc, e, id),
      });
    },

    useReplaceUser() {
      const qc = useQueryClient();
      return useMutation({
        mutationFn: ({ id, body, ifMatch }) =>
          edit(id, async (header) => (await client.PUT("/users/{id}", { params: { path: { id }, header }, body })).data!, ifMatch),
        onSuccess: (user) => edited(qc, user),
        onError: (e, { id }) => conflictSeen(qc, e, id),
      });
    },

    useDeleteUser() {
      const qc = useQueryClient();
      return useMutation({
        async mutationFn({ id, ifMatch }) {
          if (ifMatch === undefined) {
            await client.DELETE("/users/{id}", { params: { path: { id } } });
            return;
          }
          await edit(id, async (header) => {
            await client.DELETE("/users/{id}", { params: { path: { id }, header } });
          }, ifMatch);
        },
        onSuccess: (_, { id }) => {
          qc.removeQueries({ queryKey: userApiKeys.user(id) });
          return qc.invalidateQueries({ queryKey: userApiKeys.lists });
        },
        onError: (e, { id }) => conflictSeen(qc, e, id),
      });
    },
  };
}

/** After a conflict the cache shows the current version. */
function conflictSeen(qc: QueryClient, e: HttpError, id: number) {
  if (!(e instanceof ConflictError)) return;
  if (e.current) qc.setQueryData(userApiKeys.user(id), e.current);
  else qc.removeQueries({ queryKey: userApiKeys.user(id) });
  return qc.invalidateQueries({ queryKey: userApiKeys.lists });
}
