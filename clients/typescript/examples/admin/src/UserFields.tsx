import { HttpError } from "@userapi/client";
import { useId } from "react";

import { describeError } from "./api";

export interface UserValues {
  name: string;
  email: string;
}

const fields = [
  { name: "name", label: "Name", type: "text", autoComplete: "name" },
  { name: "email", label: "Email", type: "email", autoComplete: "email" },
] as const;

interface Props {
  values: UserValues;
  onChange(values: UserValues): void;
  /** The last error of the form's call: a 422's errors[] go beside their fields, anything else above them. */
  error: unknown;
}

/** The name and email inputs of the create and edit forms, each with the service's word on it. */
export function UserFields({ values, onChange, error }: Props) {
  const id = useId();
  // errors[] name fields by location: body.name, body.email.
  const byField = error instanceof HttpError ? error.fieldErrors : {};
  const unplaced = error && !fields.some((f) => byField[`body.${f.name}`]);
  return (
    <>
      {unplaced && <p role="alert" className="error">{describeError(error)}</p>}
      {fields.map((f) => {
        const message = byField[`body.${f.name}`];
        return (
          <div className="field" key={f.name}>
            <label htmlFor={`${id}-${f.name}`}>{f.label}</label>
            {/* noValidate on the forms: the service's checks are the ones shown. */}
            <input
              id={`${id}-${f.name}`}
              type={f.type}
              autoComplete={f.autoComplete}
              value={values[f.name]}
              aria-invalid={message ? true : undefined}
              aria-describedby={message ? `${id}-${f.name}-error` : undefined}
              onChange={(e) => onChange({ ...values, [f.name]: e.target.value })}
            />
            {message && (
              <p id={`${id}-${f.name}-error`} className="error">
                {f.label} {message}
              </p>
            )}
          </div>
        );
      })}
    </>
  );
}
