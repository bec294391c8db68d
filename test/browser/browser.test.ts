import { existsSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { browserRequired, CHROMIUM, launchChromium, serveStatic } from "./harness.js";

/**
 * The browser path, end to end: a page served from 127.0.0.1 compiles lstm.cell, runs it on WebGPU
 * (Chromium's SwiftShader) and checks it against the JS backend in the same page. Driven by
 * playwright-core with Debian's Chromium. In CI (the variable CI set) it cannot skip.
 */
const available = existsSync(CHROMIUM) && existsSync("dist/runtime/index.js");

let base = "";
let close: () => Promise<void>;
beforeAll(async () => {
  ({ base, close } = await serveStatic(process.cwd(), "/test/browser/page.html"));
});
afterAll(() => close());

describe.skipIf(!available && !browserRequired)("in a browser", () => {
  it("compiles lstm.cell in the page and WebGPU matches the JS backend", async () => {
    const browser = await launchChromium();
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
