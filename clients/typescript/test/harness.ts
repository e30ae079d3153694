// Starts a real userapi for the tests, or uses the one at USERAPI_URL (with
// an admin key in USERAPI_KEY).
//
// Started here, it runs as a child process (output in a log file, never a
// pipe) on a fresh database that is dropped afterwards, with limits low
// enough to test 429s. Each client gets an API key of its own, made with
// `userapi keys create`, so each has its own rate budget.
//
// With PRISM set to the path of a `prism` binary, the tests talk to a Prism
// validation proxy in front of the server, which checks every request and
// response against openapi.yaml.
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

import { createUserApiClient, type UserApiClient } from "../src/index.js";

const repo = resolve(import.meta.dirname, "..", "..", "..", "..");

export interface Harness {
  baseUrl: string;
  /** A client with a key of its own, holding scopes (all by default). */
  client(scopes?: string): UserApiClient;
  /** A client that sends no API key. */
  anonymous(): UserApiClient;
  /** A new API key holding scopes (all by default). */
  key(scopes?: string): string;
  /** Runs SQL on the server's database; absent with USERAPI_URL. */
  sql?: (statement: string) => void;
  stop(): Promise<void>;
}

let clients = 0;

/** Starts the service for a suite; `settings` override the suite's defaults. */
export async function startHarness(settings: Record<string, string> = {}): Promise<Harness> {
  const children: ChildProcess[] = [];
  const cleanups: (() => void)[] = [];
  let baseUrl = process.env.USERAPI_URL ?? "";
  let newKey = (_scopes: string): string => process.env.USERAPI_KEY ?? "";
  let sql: Harness["sql"];

  if (!baseUrl) {
    const dir = mkdtempSync(join(tmpdir(), "userapi-client-test-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const bin = join(dir, "userapi");
    execFileSync("go", ["build", "-o", bin, "./cmd/userapi"], { cwd: repo, stdio: "inherit" });

    const db = `userapi_tsclient_${randomBytes(4).toString("hex")}`;
    const admin = new URL(process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable");
    const dbUrl = new URL(admin);
    dbUrl.pathname = `/${db}`;
    admin.pathname = "/postgres";
    cleanups.push(() => {
      try {
        execFileSync("psql", [admin.toString(), "-qc", `DROP DATABASE IF EXISTS ${db} WITH (FORCE)`], { stdio: "ignore" });
      } catch {
        console.error(`could not drop test database ${db}`);
      }
    });

    sql = (statement) => execFileSync("psql", [dbUrl.toString(), "-qc", statement], { stdio: "ignore" });

    const port = await freePort();
    const log = join(dir, "userapi.log");
    const env = {
      ...process.env,
      USERAPI_ADDR: `127.0.0.1:${port}`,
      USERAPI_METRICS_ADDR: "off", // parallel servers must not share the default port
      DATABASE_URL: dbUrl.toString(),
      USERAPI_DB_MIN_CONNS: "1",
      USERAPI_DB_MAX_CONNS: "4",
      USERAPI_CACHE_PREFIX: `tsclient-${randomBytes(4).toString("hex")}:`,
      USERAPI_RATE_LIMIT: "100/1m",
      // A new key's first request also spends its address's budget (the
      // key is verified after that limit): room for every key a file makes.
      USERAPI_RATE_LIMIT_WRITES: "20/1m",
      USERAPI_PROCESS_DELAY: "100ms",
      USERAPI_WEBHOOK_ALLOW_PRIVATE: "true", // the tests' receiver is on loopback
      ...settings,
    };
    // `keys create` prints the key alone on stdout.
    newKey = (scopes) =>
      execFileSync(bin, ["keys", "create", "--name", `ts-test-${clients}`, "--scopes", scopes], {
        env,
        encoding: "utf8",
        stdio: ["ignore", "pipe", "pipe"],
      }).trim();
    const child = spawn(bin, ["serve"], {
      env,
      stdio: ["ignore", openSync(log, "a"), openSync(log, "a")],
    });
    children.push(child);
    baseUrl = `http://127.0.0.1:${port}`;
    await waitReady(`${baseUrl}/livez`, child, log);
  }

  let prismLog = "";
  if (process.env.PRISM) {
    const port = await freePort();
    const log = join(tmpdir(), `prism-${port}.log`);
    prismLog = log;
    const prism = spawn(
      process.env.PRISM,
      ["proxy", join(repo, "openapi.yaml"), baseUrl, "--errors", "--port", String(port), "--host", "127.0.0.1"],
      { stdio: ["ignore", openSync(log, "a"), openSync(log, "a")] },
    );
    children.push(prism);
    baseUrl = `http://127.0.0.1:${port}`;
    await waitReady(`${baseUrl}/livez`, prism, log);
  }

  const url = baseUrl;
  return {
    baseUrl: url,
    client(scopes = "admin") {
      clients++;
      return createUserApiClient(url, { apiKey: newKey(scopes) });
    },
    anonymous() {
      return createUserApiClient(url);
    },
    key(scopes = "admin") {
      clients++;
      return newKey(scopes);
    },
    sql,
    async stop() {
      for (const c of children.reverse()) {
        c.kill("SIGTERM");
        await new Promise((r) => c.once("exit", r));
      }
      for (const f of cleanups.reverse()) f();
      // The proxy reports what breaks the contract; any report fails the run.
      if (prismLog) {
        const violations = readFileSync(prismLog, "utf8").split("\n").filter((l) => /violation/i.test(l));
        rmSync(prismLog, { force: true });
        if (violations.length > 0) throw new Error(`the proxy saw answers that break openapi.yaml:\n${violations.join("\n")}`);
      }
    },
  };
}

async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === "object" && addr ? resolvePort(addr.port) : reject(new Error("no port"))));
    });
  });
}

async function waitReady(url: string, child: ChildProcess, log: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) {
      throw new Error(`${url}: the process exited (${child.exitCode}):\n${readFileSync(log, "utf8")}`);
    }
    try {
      const res = await fetch(url);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} did not answer within a minute:\n${readFileSync(log, "utf8")}`);
}
