// The documentation pages, in a real headless Chromium: Swagger UI shows
// every operation, Authorize takes an API key or a token, and "Try it out" works
// against the live server with it; ReDoc
// renders; and neither page asks anything of any other host.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";

import { chromium } from "playwright-core";

import { startHarness } from "../clients/typescript/dist/test/harness.js";

let h, browser;
before(async () => {
  h = await startHarness();
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  });
});
after(async () => {
  await browser?.close();
  await h?.stop();
});

// openPage records every request the page makes to another host, and
// blocks it, so that a page that needs the internet fails here.
async function openPage() {
  const page = await browser.newPage();
  const offsite = [];
  const self = new URL(h.baseUrl).host;
  await page.route("**/*", (route) => {
    const url = new URL(route.request().url());
    if (url.protocol === "data:" || url.host === self) return route.continue();
    offsite.push(url.href);
    return route.abort();
  });
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  return { page, offsite, errors };
}

async function operationCount() {
  const spec = await (await fetch(`${h.baseUrl}/openapi.json`)).json();
  let n = 0;
  for (const item of Object.values(spec.paths)) {
    n += Object.keys(item).filter((k) => ["get", "put", "post", "patch", "delete"].includes(k)).length;
  }
  return n;
}

describe("docs", () => {
  it("Swagger UI shows every operation, and Try it out calls the server", async () => {
    const { page, offsite, errors } = await openPage();
    await page.goto(`${h.baseUrl}/docs`);
    assert.match(page.url(), /\/docs\/index\.html$/);
    await page.waitForSelector(".opblock", { timeout: 30_000 });
    const shown = await page.locator(".opblock").count();
    assert.equal(shown, await operationCount(), "every operation of openapi.yaml is on the page");

    const op = page.locator("#operations-Users-listUsers");
    await op.locator(".opblock-summary").click();
    await op.getByRole("button", { name: "Try it out" }).click();
    const status = op.locator(".live-responses-table .response .response-col_status").first();

    // Without a key the server refuses; after Authorize, the call succeeds.
    await op.getByRole("button", { name: "Execute" }).click();
    await status.waitFor({ timeout: 30_000 });
    assert.match((await status.innerText()).trim(), /^401/);

    await page.locator(".auth-wrapper .authorize").click();
    const dialog = page.locator(".modal-ux");
    // It offers an API key and an access token (JWT); authorize with a key.
    const schemes = dialog.locator(".auth-container");
    assert.equal(await schemes.count(), 2, "Authorize offers two schemes");
    assert.match(await schemes.filter({ hasText: "bearerToken" }).innerText(), /JWT/);
    const key = schemes.filter({ hasText: "apiKey" });
    await key.locator("input").first().fill(h.key("users:read"));
    await key.getByRole("button", { name: "Authorize", exact: true }).click();
    await dialog.getByRole("button", { name: "Close" }).first().click();

    await op.getByRole("button", { name: "Clear" }).click();
    await op.getByRole("button", { name: "Execute" }).click();
    await status.waitFor({ timeout: 30_000 });
    assert.equal((await status.innerText()).trim(), "200");
    assert.match(await op.locator(".curl-command").evaluate((e) => e.textContent), /Authorization: Bearer uak_/);

    assert.deepEqual(offsite, [], "no request leaves the machine");
    assert.deepEqual(errors, [], "no script errors");
    await page.close();
  });

  it("Swagger UI fits a laptop screen: no definition selector, Authorize in view, the key kept across reloads", async () => {
    const { page, offsite, errors } = await openPage();
    await page.setViewportSize({ width: 1366, height: 768 });
    await page.goto(`${h.baseUrl}/docs/index.html`);
    await page.waitForSelector(".opblock", { timeout: 30_000 });

    assert.equal(await page.locator(".topbar").count(), 0, "no top bar");
    assert.equal(await page.getByText("Select a definition").count(), 0, "no definition selector");

    const authorize = page.locator(".auth-wrapper .authorize");
    const box = await authorize.boundingBox();
    assert.ok(box && box.y >= 0 && box.y + box.height <= 768 && box.x + box.width <= 1366,
      `the Authorize button is within the 1366x768 viewport without scrolling (at ${JSON.stringify(box)})`);

    // The dialog says where a key comes from (the security scheme's description).
    await authorize.click();
    const dialog = page.locator(".modal-ux");
    assert.match(await dialog.innerText(), /make run[\s\S]*\.data\/dev-api-key/);
    await dialog.locator("input").first().fill(h.key("users:read"));
    // One form per scheme (API key, access token): authorize the key's, the first.
    await dialog.getByRole("button", { name: "Authorize", exact: true }).first().click();
    await dialog.getByRole("button", { name: "Close" }).first().click();

    // After a reload the key is still there: the list answers 200 without Authorize.
    await page.reload();
    await page.waitForSelector(".opblock", { timeout: 30_000 });
    assert.equal(await page.locator(".auth-wrapper .authorize.locked").count(), 1, "still authorized after a reload");
    const op = page.locator("#operations-Users-listUsers");
    await op.locator(".opblock-summary").click();
    await op.getByRole("button", { name: "Try it out" }).click();
    await op.getByRole("button", { name: "Execute" }).click();
    const status = op.locator(".live-responses-table .response .response-col_status").first();
    await status.waitFor({ timeout: 30_000 });
    assert.equal((await status.innerText()).trim(), "200");

    assert.deepEqual(offsite, [], "no request leaves the machine");
    assert.deepEqual(errors, [], "no script errors");
    await page.close();
  });

  it("ReDoc renders the reference", async () => {
    const { page, offsite, errors } = await openPage();
    await page.goto(`${h.baseUrl}/redoc`);
    // Each operation is a section with its summary as heading.
    await page.locator("h2", { hasText: "Create a user" }).first().waitFor({ timeout: 30_000 });
    const title = await page.locator("h1").first().innerText();
    assert.match(title, /userapi/);
    // Each operation's code samples (x-codeSamples) are tabs beside it.
    assert.ok(await page.locator('[role="tab"]', { hasText: "@userapi/client" }).count() >= 15, "TypeScript samples shown");
    assert.ok(await page.locator('[role="tab"]', { hasText: "curl" }).count() >= 20, "curl samples shown");
    assert.deepEqual(offsite, [], "no request leaves the machine");
    assert.deepEqual(errors, [], "no script errors");
    await page.close();
  });
});
