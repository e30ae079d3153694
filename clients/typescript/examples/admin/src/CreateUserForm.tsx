import { useState } from "react";

import { api } from "./api";
import { UserFields, type UserValues } from "./UserFields";

const empty: UserValues = { name: "", email: "" };

export function CreateUserForm() {
  const create = api.useCreateUser();
  const [values, setValues] = useState(empty);
  return (
    <form
      noValidate
      aria-label="New user"
      onSubmit={(e) => {
        e.preventDefault();
        create.mutate({ body: values }, { onSuccess: () => setValues(empty) });
      }}
    >
      <UserFields values={values} onChange={setValues} error={create.error} />
      <button type="submit" disabled={create.isPending}>Create user</button>
      {create.isSuccess && (
        <p role="status" className="muted">
          Created {create.data.name} (id {create.data.id}).
        </p>
      )}
    </form>
  );
}
