// The code samples of openapi.yaml (x-codeSamples, shown by ReDoc): every
// operation has a curl one, and every TypeScript one type-checks with
// tsc --strict against the client package; every curl sample runs against a
// live server and succeeds, in the spec's order with the deletions last (so
// that the ids they name exist when they run), after what `given` sets up.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { after, before, describe, it } from "node:test";

import { startHarness } from "../clients/typescript/dist/test/harness.js";

const run = promisify(execFile);
const repo = join(dirname(fileURLToPath(import.meta.url)), "..");
const client = join(repo, "clients/typescript");

let h, samples;
before(async () => {
  // The samples make more writes than the client suites' budget allows.
  h = await startHarness({ USERAPI_RATE_LIMIT_WRITES: "100/1m" });
  const spec = await (await fetch(`${h.baseUrl}/openapi.json`)).json();
  samples = [];
  for (const [path, item] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(item)) {
      if (!["get", "put", "post", "patch", "delete"].includes(method)) continue;
      samples.push({ id: op.operationId, method, path, code: op["x-codeSamples"] ?? [] });
    }
  }
});
after(async () => {
  await h?.stop();
});

const source = (s, lang) => s.code.find((c) => c.lang === lang)?.source;

describe("code samples", () => {
  it("every operation has a curl sample", () => {
    const missing = samples.filter((s) => !source(s, "Shell")?.startsWith("curl ")).map((s) => s.id);
    assert.deepEqual(missing, [], "operations without a curl sample");
  });

  it("every TypeScript sample type-checks with tsc --strict against @userapi/client", async () => {
    const dir = mkdtempSync(join(tmpdir(), "userapi-samples-"));
    try {
      mkdirSync(join(dir, "node_modules/@userapi"), { recursive: true });
      symlinkSync(client, join(dir, "node_modules/@userapi/client"));
      const files = [];
      for (const s of samples) {
        const ts = source(s, "TypeScript");
        if (ts === undefined) continue;
        writeFileSync(join(dir, `${s.id}.ts`), ts);
        files.push(`${s.id}.ts`);
      }
      assert.ok(files.length >= 15, `only ${files.length} TypeScript samples`);
      // As in a browser app built with a bundler: ES modules, DOM types.
      writeFileSync(join(dir, "tsconfig.json"), JSON.stringify({
        compilerOptions: {
          strict: true, noEmit: true, target: "ES2022", module: "ES2022", moduleResolution: "Bundler",
          lib: ["ES2022", "DOM"], types: [], skipLibCheck: true,
        },
        files,
      }));
      try {
        await run(join(client, "node_modules/.bin/tsc"), ["-p", dir], { cwd: dir });
      } catch (e) {
        assert.fail(`tsc --strict refused a sample:\n${e.stdout}${e.stderr}`);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  // What a sample may rightly get from a test server that has no outside
  // world: the sample receiver (hooks.example.com) is out of reach, so the
  // test endpoint answers its documented 502 and no delivery attempt exists
  // to retry (404); the live stream runs until curl's time is up (exit 28).
  function expectedHere(id, e) {
    const status = (n) => new RegExp(`"status":\\s*${n}`).test(e.stdout ?? "");
    if (id === "testWebhook") return status(502);
    if (id === "retryWebhookDelivery") return status(404);
    if (id === "streamEvents") return e.code === 28 && /^retry: /m.test(e.stdout ?? "");
    return false;
  }

  // What a sample needs first that no earlier sample leaves behind: a
  // deleted user to undelete (the deletions run last).
  const given = {
    undeleteUser: async (env) => {
      const res = await fetch(`${h.baseUrl}/users/1`, { method: "DELETE", headers: { Authorization: `Bearer ${env.USERAPI_KEY}` } });
      assert.equal(res.status, 204, "the soft delete before undeleteUser's sample");
    },
  };

  it("every curl sample succeeds against the server", async () => {
    const env = { ...process.env, USERAPI_URL: h.baseUrl, USERAPI_KEY: h.key("admin") };
    const cwd = mkdtempSync(join(tmpdir(), "userapi-curl-")); // for the files samples download
    const ordered = [...samples.filter((s) => s.method !== "delete"), ...samples.filter((s) => s.method === "delete")];
    for (const s of ordered) {
      const curl = source(s, "Shell");
      // --fail-with-body makes an error status fail the sample; -sS keeps the output short.
      // A live stream never ends by itself: give it a few seconds.
      const limit = s.id === "streamEvents" ? "--max-time 3 " : "";
      const script = `curl() { command curl --fail-with-body -sS ${limit}"$@"; }\n${curl}`;
      await given[s.id]?.(env);
      try {
        await run("bash", ["-euo", "pipefail", "-c", script], { env, cwd, maxBuffer: 16 << 20 });
      } catch (e) {
        if (expectedHere(s.id, e)) continue;
        rmSync(cwd, { recursive: true, force: true });
        assert.fail(`${s.id} (${s.method.toUpperCase()} ${s.path}): its curl sample failed:\n${curl}\n${e.stdout}${e.stderr}`);
      }
    }
    rmSync(cwd, { recursive: true, force: true });
  });
});
