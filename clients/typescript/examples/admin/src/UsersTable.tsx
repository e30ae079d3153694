import { toDate, type User } from "@userapi/client";
import type { UsersListParams } from "@userapi/client/react";

import { api, describeError } from "./api";

interface Props {
  params: UsersListParams;
  onEdit(id: number): void;
  onDelete(user: User): void;
}

/** The users that match params, a page at a time. */
export function UsersTable({ params, onEdit, onDelete }: Props) {
  const list = api.useUsersInfinite(params);
  const users = list.data?.pages.flatMap((p) => p.items) ?? [];

  return (
    <>
      {list.isError && <p role="alert" className="error">{describeError(list.error)}</p>}
      <table aria-busy={list.isFetching}>
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Email</th>
            <th scope="col">Created</th>
            <th scope="col"><span className="visually-hidden">Actions</span></th>
          </tr>
        </thead>
        <tbody>
          {users.map((u) => (
            <tr key={u.id}>
              <td>{u.name}</td>
              <td>{u.email}</td>
              <td><time dateTime={u.created_at}>{toDate(u.created_at).toLocaleDateString()}</time></td>
              <td className="actions">
                <button type="button" aria-label={`Edit ${u.name}`} onClick={() => onEdit(u.id)}>Edit</button>
                <button type="button" aria-label={`Delete ${u.name}`} onClick={() => onDelete(u)}>Delete</button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <p role="status" className="muted">
        {list.isPending ? "Loading…" : `${users.length} ${users.length === 1 ? "user" : "users"} shown${list.hasNextPage ? "; there are more" : ""}`}
      </p>
      {list.hasNextPage && (
        <button type="button" onClick={() => void list.fetchNextPage()} disabled={list.isFetchingNextPage}>
          {list.isFetchingNextPage ? "Loading more…" : "Load more"}
        </button>
      )}
    </>
  );
}
