// Request checks worded as the service words them (server/validate.go), so
// that a form built against the mocks shows the messages it will show live.
// The suite sends the same bad requests to both and compares errors[].
import type { FieldError } from "../index.js";

const atext = "[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+";
const dotAtom = `${atext}(?:\\.${atext})*`;
const emailPattern = new RegExp(`^${dotAtom}@${dotAtom}$`);

interface StringRule {
  minLength?: number;
  maxLength?: number;
  email?: boolean;
}

const userFields: Record<string, StringRule> = {
  name: { minLength: 1, maxLength: 100 },
  email: { maxLength: 254, email: true },
};

function checkString(loc: string, v: unknown, rule: StringRule): FieldError[] {
  if (v === null) return [{ location: loc, message: "must not be null" }];
  if (typeof v !== "string") return [{ location: loc, message: "must be a string" }];
  const out: FieldError[] = [];
  const length = [...v].length;
  if (rule.minLength !== undefined && length < rule.minLength) out.push({ location: loc, message: `must be at least ${plural(rule.minLength, "character")}` });
  if (rule.maxLength !== undefined && length > rule.maxLength) out.push({ location: loc, message: `must be at most ${plural(rule.maxLength, "character")}` });
  if (rule.email && !emailPattern.test(v)) out.push({ location: loc, message: "must be a valid email address" });
  return out;
}

/** Checks a user body: every field for a create or a replace, some for a patch. */
export function checkUserBody(body: unknown, partial: boolean): FieldError[] {
  if (typeof body !== "object" || body === null || Array.isArray(body)) return [{ location: "body", message: "must be an object" }];
  const b = body as Record<string, unknown>;
  const out: FieldError[] = [];
  for (const key of Object.keys(b)) {
    if (!(key in userFields)) out.push({ location: `body.${key}`, message: "is not a known field" });
  }
  if (partial && Object.keys(b).length === 0) out.push({ location: "body", message: `must have at least ${plural(1, "field")}` });
  for (const [key, rule] of Object.entries(userFields)) {
    if (!(key in b)) {
      if (!partial) out.push({ location: `body.${key}`, message: "is required" });
      continue;
    }
    out.push(...checkString(`body.${key}`, b[key], rule));
  }
  return sorted(out);
}

/** Checks an integer parameter; returns the value, or the errors. */
export function checkInteger(loc: string, raw: string | null, min: number, max?: number): number | FieldError[] | undefined {
  if (raw === null) return undefined;
  if (!/^[+-]?\d+$/.test(raw.trim())) return [{ location: loc, message: "must be an integer" }];
  const n = Number(raw);
  if (n < min) return [{ location: loc, message: `must be at least ${min}` }];
  if (max !== undefined && n > max) return [{ location: loc, message: `must be at most ${max}` }];
  return n;
}

/** Checks a string parameter's length. */
export function checkLength(loc: string, raw: string | null, minLength: number, maxLength: number): FieldError[] {
  return raw === null ? [] : checkString(loc, raw, { minLength, maxLength });
}

/** A count worded for people, as the service words it: "1 character", "2 characters". */
export function plural(n: number, noun: string): string {
  return n === 1 ? `1 ${noun}` : `${n} ${noun}s`;
}

export function sorted(errors: FieldError[]): FieldError[] {
  return errors.sort((a, b) => (a.location < b.location ? -1 : a.location > b.location ? 1 : 0));
}

/** The problem's detail for a list of bad fields, as the service writes it. */
export function validationDetail(errors: FieldError[]): string {
  return errors.length === 1 ? `${errors[0]!.location} ${errors[0]!.message}` : `the request has ${errors.length} invalid fields`;
}
