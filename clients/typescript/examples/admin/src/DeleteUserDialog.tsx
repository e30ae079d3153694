import type { User } from "@userapi/client";

import { api, describeError } from "./api";
import { Modal } from "./Modal";

/** Asks before deleting user. */
export function DeleteUserDialog({ user, onClose }: { user: User; onClose(): void }) {
  const del = api.useDeleteUser();
  return (
    <Modal title={`Delete ${user.name}?`} role="alertdialog" onClose={onClose}>
      <p>
        {user.name} ({user.email}) will be deleted for good.
      </p>
      {del.isError && <p role="alert" className="error">{describeError(del.error)}</p>}
      <div className="buttons">
        <button type="button" className="danger" disabled={del.isPending} onClick={() => del.mutate({ id: user.id }, { onSuccess: onClose })}>
          Delete
        </button>
        <button type="button" onClick={onClose}>Cancel</button>
      </div>
    </Modal>
  );
}
