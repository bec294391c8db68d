import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { formatSource } from "../../compiler/format/format.js";
import { browserRequired, CHROMIUM, launchChromium, serveStatic } from "../browser/harness.js";

// The playground's Format button (`npm run build` first), in Chromium headless: the editor's text becomes
// the formatter's; a text that does not parse stays as it is.
const SITE = resolve("dist/playground");
const available = existsSync(CHROMIUM) && existsSync(join(SITE, "index.html"));

const MESSY = readFileSync("examples/cells/gru.cell", "utf8")
  .replace("input x[D]", "input x[ D ];")
  .replace("r = sigmoid(Wr @ x + Ur @ h + br)", "r=sigmoid( Wr@x+Ur@h+br )   # reset");

let base = "";
let close: () => Promise<void>;
beforeAll(async () => {
  if (available) ({ base, close } = await serveStatic(SITE, "/index.html", true));
});
afterAll(() => close?.());

const editorText = (page: Page) =>
  page.$$eval(".cm-content .cm-line", (lines) => lines.map((l) => l.textContent ?? "").join("\n"));
const checks = (page: Page) => page.evaluate(() => Number(document.body.dataset.checks ?? 0));

describe.skipIf(!available && !browserRequired)("the playground's Format button", () => {
  it("lays the editor's text out as cellc fmt does", async () => {
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on("pageerror", (e) => errors.push(String(e)));
      await page.goto(`${base}/`);
      await page.waitForFunction(() => Number(document.body.dataset.checks ?? 0) >= 1);
      const type = async (text: string) => {
        const n = await checks(page);
        await page.click(".cm-content");
        await page.keyboard.press("Control+A");
        await page.keyboard.insertText(text);
        await page.waitForFunction((k) => Number(document.body.dataset.checks ?? 0) > k, n);
      };
      await type(MESSY);
      await page.click("#format");
      const want = (formatSource("lstm.cell", MESSY) as { text: string }).text;
      expect(await editorText(page)).toBe(want); // the last line break ends in an empty line
      expect(want).toContain("  r = sigmoid(Wr @ x + Ur @ h + br)  # reset");

      const broken = "cell c {\n  h' = (\n}";
      await type(broken);
      await page.click("#format");
      expect(await editorText(page)).toBe(broken);
      expect(await page.textContent("#status")).toContain("not formatted");
      expect(errors).toEqual([]);
    } finally {
      await browser.close();
    }
  });
});
