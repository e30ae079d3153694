// Sets this package's version to the API's (openapi.yaml info.version), so
// that a client's version says which contract it speaks.
import { readFileSync, writeFileSync } from "node:fs";
import { parse } from "yaml";

const spec = parse(readFileSync(new URL("../../../openapi.yaml", import.meta.url), "utf8"));
const file = new URL("../package.json", import.meta.url);
const pkg = JSON.parse(readFileSync(file, "utf8"));
if (pkg.version !== spec.info.version) {
  pkg.version = spec.info.version;
  writeFileSync(file, JSON.stringify(pkg, null, 2) + "\n");
}
