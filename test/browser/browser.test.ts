import { existsSync, readFileSync, statSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { extname, join, normalize } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

/**
 * The browser path, end to end: a page served from 127.0.0.1 compiles lstm.cell, runs it on WebGPU
 * (Chromium's SwiftShader) and checks it against the JS backend in the same page. Driven by
 * playwright-core with Debian's Chromium. CI sets CELLC_REQUIRE_BROWSER=1, so that it cannot skip there.
 */
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const required = process.env.CELLC_REQUIRE_BROWSER === "1";
const available = existsSync(CHROMIUM) && existsSync("dist/runtime/index.js");
const TYPES: Record<string, string> = {
  ".html": "text/html",
  ".js": "text/javascript",
  ".mjs": "text/javascript",
  ".cell": "text/plain",
};

let server: Server;
let base = "";
beforeAll(async () => {
  const root = process.cwd();
  server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    const path = url.pathname === "/" ? "/test/browser/page.html" : url.pathname;
    const file = normalize(join(root, path));
    if (!file.startsWith(root) || !existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404).end();
      return;
    }
    res
      .writeHead(200, { "content-type": TYPES[extname(file)] ?? "application/octet-stream" })
      .end(readFileSync(file));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const addr = server.address();
  base = `http://127.0.0.1:${typeof addr === "object" && addr ? addr.port : 0}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

describe.skipIf(!available && !required)("in a browser", () => {
  it("compiles lstm.cell in the page and WebGPU matches the JS backend", async () => {
    const { chromium } = await import("playwright-core");
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        "--headless=new",
        "--no-sandbox",
        "--enable-unsafe-webgpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-quic",
      ],
    });
    try {
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on("pageerror", (e) => errors.push(String(e)));
      await page.goto(`${base}/test/browser/page.html`);
      await page.waitForFunction(() => (window as { __result?: unknown }).__result !== undefined, undefined, {
        timeout: 90_000,
      });
      const result = (await page.evaluate(() => (window as { __result?: unknown }).__result)) as {
        ok: boolean;
        maxDiff?: number;
        adapter?: string;
        error?: string;
        checked?: number;
      };
      console.log(`browser: ${JSON.stringify(result)}`);
      expect(errors).toEqual([]);
      expect(result.error).toBeUndefined();
      expect(result.ok).toBe(true);
      expect(result.checked).toBeGreaterThan(10);
      expect(result.maxDiff).toBeLessThan(2e-4);
    } finally {
      await browser.close();
    }
  }, 120_000);
});
