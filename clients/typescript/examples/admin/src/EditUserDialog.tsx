import type { User } from "@userapi/client";
import { ConflictError } from "@userapi/client/react";
import { useState } from "react";

import { api, describeError } from "./api";
import { Modal } from "./Modal";
import { UserFields, type UserValues } from "./UserFields";

/** Edits user id, from the version it loads; a change made meanwhile by someone else is a conflict to resolve. */
export function EditUserDialog({ id, onClose }: { id: number; onClose(): void }) {
  const user = api.useUser(id);
  return (
    <Modal title={user.data ? `Edit ${user.data.name}` : "Edit user"} onClose={onClose}>
      {user.isError && <p role="alert" className="error">{describeError(user.error)}</p>}
      {user.isPending && <p role="status">Loading…</p>}
      {user.data && <EditForm user={user.data} onClose={onClose} />}
    </Modal>
  );
}

function EditForm({ user, onClose }: { user: User; onClose(): void }) {
  const update = api.useUpdateUser();
  const [values, setValues] = useState<UserValues>({ name: user.name, email: user.email });
  // The version the form started from: If-Match sends its ETag, so a save
  // never silently undoes a change made since, even if the cache has
  // refetched the user meanwhile.
  const [base, setBase] = useState(() => api.etagOf(user.id));
  const conflict = update.error instanceof ConflictError ? update.error : undefined;

  const save = (ifMatch: string | undefined) =>
    update.mutate({ id: user.id, body: values, ...(ifMatch ? { ifMatch } : {}) }, { onSuccess: onClose });

  return (
    <form
      noValidate
      onSubmit={(e) => {
        e.preventDefault();
        save(base);
      }}
    >
      <UserFields values={values} onChange={setValues} error={conflict ? undefined : update.error} />
      <div className="buttons">
        <button type="submit" disabled={update.isPending}>Save</button>
        <button type="button" onClick={onClose}>Cancel</button>
      </div>
      {conflict && (
        <Modal title="Someone else changed this user" role="alertdialog" onClose={() => update.reset()}>
          {conflict.current ? (
            <>
              <p>Since you opened it, this user was changed to:</p>
              <dl>
                <dt>Name</dt>
                <dd>{conflict.current.name}</dd>
                <dt>Email</dt>
                <dd>{conflict.current.email}</dd>
              </dl>
              <div className="buttons">
                <button
                  type="button"
                  onClick={() => {
                    const now = conflict.current!;
                    setValues({ name: now.name, email: now.email });
                    setBase(api.etagOf(now.id));
                    update.reset();
                  }}
                >
                  Reload
                </button>
                {/* The client now holds the current version's ETag: sending that overwrites on purpose. */}
                <button type="button" className="danger" onClick={() => save(api.etagOf(user.id))}>
                  Overwrite
                </button>
              </div>
            </>
          ) : (
            <>
              <p>It has been deleted since you opened it.</p>
              <button type="button" onClick={onClose}>Close</button>
            </>
          )}
        </Modal>
      )}
    </form>
  );
}
