// Checks answers against openapi.yaml: the body of each status an
// operation declares must match its schema (openapi-response-validator).
import { readFileSync } from "node:fs";
import { resolve } from "node:path";

import OpenAPIResponseValidator from "openapi-response-validator";
import { parse } from "yaml";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;
const spec: Json = parse(readFileSync(resolve(import.meta.dirname, "..", "..", "..", "..", "openapi.yaml"), "utf8"));

const deref = (o: Json): Json => (o && typeof o.$ref === "string" ? deref(o.$ref.split("/").slice(1).reduce((a: Json, k: string) => a[k], spec)) : o);

/** The operation of spec for a method and a concrete path such as /users/12. */
function operationFor(method: string, path: string): Json {
  for (const [template, item] of Object.entries<Json>(spec.paths)) {
    const re = new RegExp(`^${template.replace(/\{[^}]+\}/g, "[^/]+")}$`);
    if (re.test(path) && item[method.toLowerCase()]) return item[method.toLowerCase()];
  }
  throw new Error(`no operation ${method} ${path} in openapi.yaml`);
}

/** Returns why an answer breaks openapi.yaml, or undefined when it keeps it. */
export function contractViolation(method: string, path: string, status: number, contentType: string, body: unknown): string | undefined {
  const op = operationFor(method, path);
  const declared = op.responses[String(status)] ?? op.responses.default;
  if (!declared) return `${method} ${path}: status ${status} is not declared`;
  const response = deref(declared);
  if (!response.content) return body === undefined ? undefined : `${method} ${path} ${status}: a body where none is declared`;
  const media = contentType.split(";")[0]!.trim();
  const content = response.content[media];
  if (!content) return `${method} ${path} ${status}: Content-Type ${media} is not declared (${Object.keys(response.content).join(", ")})`;
  // A CommonJS module: its class is the default export's `default`.
  const validator = new OpenAPIResponseValidator.default({ responses: { [status]: { schema: content.schema } }, components: spec.components });
  const err = validator.validateResponse(status, body);
  return err ? `${method} ${path} ${status}: ${JSON.stringify(err.errors)}` : undefined;
}
