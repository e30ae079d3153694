// The admin app in headless Chromium: the same scenario against the real
// service and against the package's mocks (MSW in the browser). Each
// backend gets its own build of the app, served from 127.0.0.1 by a small
// static server; the service is started by the client's test harness with
// the app's origin in USERAPI_CORS_ORIGINS and the mocks' thirty fixture
// users, so both backends hold the same data. Screenshots go to
// screenshots/ (git-ignored).
//
// Needs Chromium (CHROMIUM, or /usr/bin/chromium), and the client's test
// build for its harness, which is made here when missing.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { createServer } from "node:http";
import { extname, join, resolve, sep } from "node:path";
import { after, before, describe, it } from "node:test";

import { fixtureUsers, mockKeys } from "@userapi/client/mocks";
import { chromium } from "playwright-core";

const app = resolve(import.meta.dirname, "..");
const client = resolve(app, "..", "..");
const harness = join(client, "dist", "test", "harness.js");
if (!existsSync(harness)) {
  console.log("building the client's tests for their harness (tsc -p ../..)");
  execFileSync(process.execPath, [join(client, "node_modules", "typescript", "bin", "tsc"), "-p", client], { stdio: "inherit" });
}
const { startHarness } = await import(harness);
const shots = join(app, "screenshots");
const total = fixtureUsers.length;
const pageSize = 20; // the app's

let browser;
before(async () => {
  mkdirSync(shots, { recursive: true });
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
});
after(() => browser?.close());

describe("against the real service", () => {
  let site, h;
  const backend = {
    name: "real",
    async setup() {
      site = await serve(join(app, "dist"));
      process.env.USERAPI_CORS_ORIGINS = site.origin; // the harness passes its environment on
      h = await startHarness();
      // The mocks' fixtures, a few keys at a time: each key may write ten times a minute.
      const clients = [h.client(), h.client(), h.client(), h.client()];
      for (const [i, { name, email }] of fixtureUsers.entries()) await clients[i % clients.length].POST("/users", { body: { name, email } });
      build("production", { VITE_USERAPI_URL: h.baseUrl });
      return { url: site.origin, apiUrl: h.baseUrl, key: h.key(), otherKey: h.key() };
    },
  };
  after(async () => {
    await site?.close();
    await h?.stop();
  });
  scenario(backend);
});

describe("against the mocks", () => {
  let site;
  const backend = {
    name: "mock",
    async setup() {
      build("mock");
      site = await serve(join(app, "dist-mock"));
      // The handlers answer any origin; the page's own is as good as any.
      return { url: site.origin, apiUrl: site.origin, key: mockKeys.admin, otherKey: mockKeys.admin };
    },
  };
  after(() => site?.close());
  scenario(backend);
});

/** The steps, for one backend; each builds on the one before. */
function scenario(backend) {
  let page, env, errors, created;
  const email = `test.person.${randomBytes(3).toString("hex")}@example.com`;
  // The whole page, or with a dialog open what the screen shows.
  const shot = (name, fullPage = true) => page.screenshot({ path: join(shots, `${backend.name}-${name}.png`), fullPage });
  const rows = () => page.locator("tbody tr");
  const row = (text) => rows().filter({ hasText: text });
  const shown = (text) => page.getByRole("status").filter({ hasText: text }).waitFor();

  /** Changes the user as another client would: straight to the API, past the app's cache. */
  async function changeBehind(id, body) {
    const status = await page.evaluate(
      async ({ apiUrl, key, id, body }) =>
        (await fetch(`${apiUrl}/users/${id}`, {
          method: "PATCH",
          headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" },
          body: JSON.stringify(body),
        })).status,
      { apiUrl: env.apiUrl, key: env.otherKey, id, body },
    );
    assert.equal(status, 200);
  }

  before(async () => {
    const started = Date.now();
    env = await backend.setup();
    console.log(`${backend.name}: app built and served at ${env.url}, API at ${env.apiUrl}, in ${Date.now() - started} ms`);
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.setDefaultTimeout(20_000);
    errors = [];
    page.on("pageerror", (e) => errors.push(e.message));
  });
  after(() => page?.close());

  it("lists the first page once the API key is given", async () => {
    await page.goto(env.url);
    await page.getByLabel("API key").fill(env.key);
    await page.getByRole("button", { name: "Use key" }).click();
    await shown(`${pageSize} users shown; there are more`);
    assert.equal(await rows().count(), pageSize);
    assert.equal(await page.evaluate(() => sessionStorage.getItem("userapi.apiKey")), env.key, "the key is kept in session storage");
    await shot("01-list");
  });

  it("loads the next page with Load more, until there is none", async () => {
    await page.getByRole("button", { name: "Load more" }).click();
    await shown(`${total} users shown`);
    assert.equal(await rows().count(), total);
    assert.equal(await page.getByRole("button", { name: "Load more" }).count(), 0);
    await rows().last().scrollIntoViewIfNeeded();
    await shot("02-load-more");
  });

  it("shows the service's word on a bad email beside the Email field", async () => {
    const form = page.getByRole("form", { name: "New user" });
    await form.getByLabel("Name", { exact: true }).fill("Test Person");
    await form.getByLabel("Email", { exact: true }).fill("not-an-email");
    await form.getByRole("button", { name: "Create user" }).click();
    const emailInput = form.locator('input[aria-invalid="true"]');
    await emailInput.waitFor();
    assert.equal(await emailInput.count(), 1, "only the email is wrong");
    assert.equal(await emailInput.getAttribute("type"), "email");
    // The message is the one in the problem's errors[] at body.email, tied to the field.
    const message = await page.locator(`[id="${await emailInput.getAttribute("aria-describedby")}"]`).textContent();
    assert.match(message, /^Email \S/);
    await shot("03-create-bad-email");
  });

  it("creates the user once the email is right, and lists it", async () => {
    const form = page.getByRole("form", { name: "New user" });
    await form.getByLabel("Email", { exact: true }).fill(email);
    await form.getByRole("button", { name: "Create user" }).click();
    const status = form.getByRole("status").filter({ hasText: "Created Test Person" });
    await status.waitFor();
    created = Number(/id (\d+)/.exec(await status.textContent())[1]);
    await row(email).waitFor();
    assert.equal(await form.locator('input[aria-invalid="true"]').count(), 0);
    await shot("04-created");
  });

  it("edits the user", async () => {
    await page.getByRole("button", { name: "Edit Test Person", exact: true }).click();
    const dialog = page.getByRole("dialog", { name: "Edit Test Person" });
    await dialog.getByLabel("Name", { exact: true }).fill("Test Person Edited");
    await dialog.getByRole("button", { name: "Save" }).click();
    await dialog.waitFor({ state: "hidden" });
    await row("Test Person Edited").waitFor();
  });

  it("on a change made meanwhile, offers to reload it or to overwrite it", async () => {
    await page.getByRole("button", { name: "Edit Test Person Edited", exact: true }).click();
    await page.getByRole("dialog", { name: "Edit Test Person Edited" }).waitFor();
    // Its title follows the user's current name from here on.
    const dialog = page.getByRole("dialog");
    const name = dialog.getByLabel("Name", { exact: true });
    const conflict = page.getByRole("alertdialog", { name: "Someone else changed this user" });

    // Reload: the form takes the other version.
    await changeBehind(created, { name: "Changed Elsewhere" });
    await name.fill("Mine");
    await dialog.getByRole("button", { name: "Save" }).click();
    await conflict.getByText("Changed Elsewhere").waitFor();
    await shot("05-conflict", false);
    await conflict.getByRole("button", { name: "Reload" }).click();
    await conflict.waitFor({ state: "hidden" });
    assert.equal(await name.inputValue(), "Changed Elsewhere");

    // Overwrite: the edit wins over the other one, on purpose.
    await changeBehind(created, { name: "Changed Again" });
    await name.fill("Mine");
    await dialog.getByRole("button", { name: "Save" }).click();
    await conflict.getByText("Changed Again").waitFor();
    await conflict.getByRole("button", { name: "Overwrite" }).click();
    await dialog.waitFor({ state: "hidden" });
    await row("Mine").waitFor();
    assert.equal(await row("Changed Again").count(), 0);
    await shot("06-overwritten");
  });

  it("deletes the user only once confirmed", async () => {
    const confirm = page.getByRole("alertdialog", { name: "Delete Mine?" });
    await page.getByRole("button", { name: "Delete Mine", exact: true }).click();
    await confirm.getByRole("button", { name: "Cancel" }).click();
    await confirm.waitFor({ state: "hidden" });
    assert.equal(await row(email).count(), 1, "cancelled: still there");

    await page.getByRole("button", { name: "Delete Mine", exact: true }).click();
    await shot("07-delete-confirm", false);
    await confirm.getByRole("button", { name: "Delete", exact: true }).click();
    await row(email).waitFor({ state: "detached" });
    await shown(`${total} users shown`);
  });

  it("searches and sorts", async () => {
    await page.getByLabel("Search").fill("LOVELACE");
    await shown("1 user shown");
    assert.deepEqual(await rows().locator("td:first-child").allTextContents(), ["Ada Lovelace"]);
    await page.getByLabel("Search").fill("");
    await shown(`${total} users shown`); // both pages, from the cache
    await page.getByLabel("Sort by").selectOption({ label: "Name, Z to A" });
    await rows().first().filter({ hasText: "Tony Hoare" }).waitFor();
    await shot("08-sorted");
  });

  it("had no uncaught errors in the page", () => {
    assert.deepEqual(errors, []);
  });
}

/** Runs vite build in mode, with env for import.meta.env. */
function build(mode, env = {}) {
  const vite = join(app, "node_modules", "vite", "bin", "vite.js");
  execFileSync(process.execPath, [vite, "build", "--mode", mode, "--logLevel", "warn"], { cwd: app, env: { ...process.env, ...env }, stdio: "inherit" });
}

const types = { ".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml", ".png": "image/png" };

/** Serves the files of dir on a free port of 127.0.0.1 (a secure context, as MSW's service worker needs); unknown paths get index.html. */
async function serve(dir) {
  const server = createServer((req, res) => {
    let file = join(dir, decodeURIComponent(new URL(req.url, "http://x").pathname));
    if (!file.startsWith(dir + sep) || !extname(file)) file = join(dir, "index.html");
    try {
      const body = readFileSync(file);
      res.writeHead(200, { "Content-Type": types[extname(file)] ?? "application/octet-stream", "Cache-Control": "no-store" });
      res.end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  return {
    origin: `http://127.0.0.1:${server.address().port}`,
    // The browser keeps connections open; close would wait for them.
    close: () => new Promise((r) => (server.close(r), server.closeAllConnections())),
  };
}
