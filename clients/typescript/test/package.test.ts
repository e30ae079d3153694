// The package as an app gets it: `npm pack`, installed into a new project
// with its peers, and each entry point imported by Node. Also: the version
// is the API's, and every non-2xx answer throws.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { describe, it } from "node:test";

import { parse } from "yaml";

import { createUserApiClient, HttpError, parseDates, ProblemError } from "../src/index.js";

const pkgDir = resolve(import.meta.dirname, "..", "..");
const pkg = JSON.parse(readFileSync(join(pkgDir, "package.json"), "utf8"));

describe("package", () => {
  it("has the version of openapi.yaml", () => {
    const spec = parse(readFileSync(join(pkgDir, "..", "..", "openapi.yaml"), "utf8"));
    assert.equal(pkg.version, spec.info.version, "run `npm run generate` after changing info.version");
  });

  it("installs from its packed tarball and every entry point imports in Node", () => {
    const dir = mkdtempSync(join(tmpdir(), "userapi-pack-"));
    try {
      const npm = (...args: string[]) =>
        execFileSync("npm", args, { cwd: dir, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
      // The suite has just built dist/ with tsc; packing must not build it again (prepare).
      const tarball = join(dir, execFileSync("npm", ["pack", "--silent", "--ignore-scripts", "--pack-destination", dir], { cwd: pkgDir, encoding: "utf8" }).trim().split("\n").pop()!);
      console.log(`# ${tarball}: ${statSync(tarball).size} bytes`);
      writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "app", private: true, type: "module" }));
      const peers = Object.keys(pkg.peerDependencies).map((name) => `${name}@${pkg.devDependencies[name]}`);
      npm("install", "--no-audit", "--no-fund", "--prefer-offline", "--loglevel=error", tarball, ...peers);
      writeFileSync(
        join(dir, "check.mjs"),
        `import * as client from "@userapi/client";
         import * as react from "@userapi/client/react";
         import * as mocks from "@userapi/client/mocks";
         console.log(JSON.stringify([typeof client.createUserApiClient, typeof react.createUserApiHooks, typeof mocks.createMockHandlers]));`,
      );
      const out = execFileSync("node", ["check.mjs"], { cwd: dir, encoding: "utf8" });
      assert.deepEqual(JSON.parse(out), ["function", "function", "function"]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("errors that are not problems", () => {
  it("a proxy's 502 page throws an HttpError, a problem a ProblemError", async () => {
    const srv = createServer((req, res) => {
      if (req.url?.startsWith("/users/1")) {
        res.writeHead(404, { "Content-Type": "application/problem+json" });
        res.end(JSON.stringify({ type: "about:blank", title: "Not Found", status: 404, detail: "user 1 does not exist" }));
        return;
      }
      res.writeHead(502, "Bad Gateway", { "Content-Type": "text/html" });
      res.end("<html><body><h1>502 Bad Gateway</h1></body></html>");
    });
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
    try {
      const addr = srv.address();
      assert.ok(addr && typeof addr === "object");
      const api = createUserApiClient(`http://127.0.0.1:${addr.port}`, { apiKey: () => "uak_test" });

      const bad = await api.GET("/users", {}).then(
        () => assert.fail("a 502 returned normally"),
        (e: unknown) => e,
      );
      assert.ok(bad instanceof HttpError, `got ${String(bad)}`);
      assert.ok(!(bad instanceof ProblemError));
      assert.equal(bad.status, 502);
      assert.equal(bad.type, "about:blank");
      assert.match(bad.body, /502 Bad Gateway/);

      const missing = await api.GET("/users/{id}", { params: { path: { id: 1 } } }).then(
        () => assert.fail("a 404 returned normally"),
        (e: unknown) => e,
      );
      assert.ok(missing instanceof ProblemError);
      assert.equal(missing.detail, "user 1 does not exist");
    } finally {
      srv.close();
    }
  });
});

describe("dates", () => {
  it("parseDates turns every *_at field into a Date and leaves the rest", () => {
    const user = { id: 1, name: "Ada", email: "ada@example.com", created_at: "2026-01-02T03:04:05Z", updated_at: "2026-01-02T03:04:06.5Z" };
    const d = parseDates(user);
    assert.ok(d.created_at instanceof Date);
    assert.equal(d.created_at.toISOString(), "2026-01-02T03:04:05.000Z");
    assert.equal(d.updated_at.getTime() - d.created_at.getTime(), 1500);
    assert.equal(d.name, "Ada");
    assert.equal(parseDates({ finished_at: null }).finished_at, null);
    assert.throws(() => parseDates({ created_at: "yesterday" }), RangeError);
  });
});

describe("credentials", () => {
  it("awaits getToken before every request, and falls back to apiKey when it gives none", async () => {
    const seen: (string | undefined)[] = [];
    const srv = createServer((req, res) => {
      seen.push(req.headers.authorization);
      res.writeHead(200, { "Content-Type": "application/json" });
      res.end(JSON.stringify({ items: [], next_cursor: null }));
    });
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
    try {
      const addr = srv.address();
      assert.ok(addr && typeof addr === "object");
      const tokens = ["eyJ.first.sig", "eyJ.second.sig", null];
      let calls = 0;
      const api = createUserApiClient(`http://127.0.0.1:${addr.port}`, {
        apiKey: "uak_fallback",
        getToken: async () => {
          await new Promise((r) => setTimeout(r, 1));
          return tokens[calls++];
        },
      });
      for (let i = 0; i < 3; i++) await api.GET("/users", {});
      assert.equal(calls, 3);
      assert.deepEqual(seen, ["Bearer eyJ.first.sig", "Bearer eyJ.second.sig", "Bearer uak_fallback"]);
    } finally {
      srv.close();
    }
  });
});
