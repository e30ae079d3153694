import type { User } from "@userapi/client";
import type { UsersListParams } from "@userapi/client/react";
import { useEffect, useState } from "react";

import { apiUrl } from "./api";
import { CreateUserForm } from "./CreateUserForm";
import { DeleteUserDialog } from "./DeleteUserDialog";
import { EditUserDialog } from "./EditUserDialog";
import { KeyForm } from "./KeyForm";
import { UsersTable } from "./UsersTable";

type Sort = NonNullable<UsersListParams["sort"]>;

const sorts: [Sort, string][] = [
  ["id", "Oldest first"],
  ["-created_at", "Newest first"],
  ["name", "Name, A to Z"],
  ["-name", "Name, Z to A"],
  ["email", "Email, A to Z"],
  ["-updated_at", "Recently changed"],
];

/** Users shown per page, and fetched per "Load more". */
const pageSize = 20;

export function App() {
  const [search, setSearch] = useState("");
  const [sort, setSort] = useState<Sort>("id");
  const q = useDebounced(search.trim(), 300);
  const [editing, setEditing] = useState<number>();
  const [deleting, setDeleting] = useState<User>();

  return (
    <main>
      <header>
        <h1>Users</h1>
        <p className="muted">{import.meta.env.MODE === "mock" ? "Mock service in this browser" : apiUrl}</p>
        <KeyForm />
      </header>

      <section aria-labelledby="list-title">
        <h2 id="list-title">All users</h2>
        <div className="filters">
          <label>
            Search
            <input type="search" value={search} maxLength={200} placeholder="Name or email" onChange={(e) => setSearch(e.target.value)} />
          </label>
          <label>
            Sort by
            <select value={sort} onChange={(e) => setSort(e.target.value as Sort)}>
              {sorts.map(([value, label]) => (
                <option key={value} value={value}>{label}</option>
              ))}
            </select>
          </label>
        </div>
        {/* q must be 1 to 200 characters: an empty search sends none. */}
        <UsersTable params={{ limit: pageSize, sort, ...(q ? { q } : {}) }} onEdit={setEditing} onDelete={setDeleting} />
      </section>

      <section aria-labelledby="create-title">
        <h2 id="create-title">New user</h2>
        <CreateUserForm />
      </section>

      {editing !== undefined && <EditUserDialog id={editing} onClose={() => setEditing(undefined)} />}
      {deleting && <DeleteUserDialog user={deleting} onClose={() => setDeleting(undefined)} />}
    </main>
  );
}

/** value, once it has stopped changing for ms: one request per pause in typing, not per key. */
function useDebounced<T>(value: T, ms: number): T {
  const [settled, setSettled] = useState(value);
  useEffect(() => {
    const t = setTimeout(() => setSettled(value), ms);
    return () => clearTimeout(t);
  }, [value, ms]);
  return settled;
}
