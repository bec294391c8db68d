import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { browserRequired, CHROMIUM, launchChromium, serveStatic } from "./harness.js";
import { decodeHash } from "../../playground/link.js";

/**
 * The playground (playground/, built by `npm run build` into dist/playground/) in Chromium headless: a
 * cell typed with an error shows the checker's diagnostic at its line and column, every stage tab shows
 * what `cellc compile --emit` prints for the same text, the artifact download is the compiler's, the
 * URL's hash brings the text back, and the Train panel trains the typed cell against the LSTM (on
 * WebAssembly, stopped and resumed; then a few steps on WebGPU). Screenshots go to
 * test/browser/artifacts/. In CI (the variable CI set) it cannot skip.
 */
const SITE = resolve("dist/playground");
const SHOTS = resolve("test/browser/artifacts");
const CLI = resolve("bin/cellc.js");
const available = existsSync(CHROMIUM) && existsSync(join(SITE, "index.html"));
const STAGES = ["ast", "ir", "grad-ir", "schedule", "js", "wgsl"];

// Typed by the test (not one of the built-in cells); the error is a `q` typed after `bz` on line 8.
const TINY = `# A minimal gated unit, typed into the page by the test
cell tiny {
  input x[D]
  state h[H]
  param Wz, Wn : [H, D] ~ xavier
  param Uz, Un : [H, H] ~ orthogonal
  param bz, bn : [H] = 0
  z = sigmoid(Wz @ x + Uz @ h + bz)
  n = tanh(Wn @ x + Un @ (z * h) + bn)
  h' = (1 - z) * h + z * n
  output h'
}
`;

let base = "";
let close: () => Promise<void>;
beforeAll(async () => {
  ({ base, close } = await serveStatic(SITE, "/index.html", true));
});
afterAll(() => close());

/** What `cellc compile FILE --emit STAGE` prints, run in `dir` (so that file names match the page's). */
function cli(dir: string, args: string[]): string {
  return execFileSync(process.execPath, [CLI, ...args], { cwd: dir, encoding: "utf8", stdio: "pipe" });
}

const checks = (page: Page) => page.evaluate(() => Number(document.body.dataset.checks ?? 0));
async function afterCheck(page: Page, before: number): Promise<void> {
  await page.waitForFunction((n) => Number(document.body.dataset.checks ?? 0) > n, before, {
    timeout: 10_000,
  });
}
const editorText = (page: Page) =>
  page.$$eval(".cm-content .cm-line", (lines) => lines.map((l) => l.textContent ?? "").join("\n"));

describe.skipIf(!available && !browserRequired)("the playground in a browser", () => {
  it("shows diagnostics as you type, every stage as the CLI prints it, keeps the cell in the link, and trains it", async () => {
    mkdirSync(SHOTS, { recursive: true });
    const tmp = mkdtempSync(join(tmpdir(), "cellc-playground-"));
    const browser = await launchChromium();
    const errors: string[] = [];
    let trained = "";
    const watch = (page: Page) => {
      page.on("pageerror", (e) => errors.push(String(e)));
      page.on("console", (m) => {
        if (m.type() === "error") errors.push(m.text());
      });
      page.on("response", (r) => {
        if (r.status() >= 400) errors.push(`${r.status()} ${r.url()}`);
      });
    };
    try {
      const context = await browser.newContext({
        viewport: { width: 1400, height: 900 },
        acceptDownloads: true,
      });
      const page = await context.newPage();
      watch(page);
      const t0 = Date.now();
      await page.goto(`${base}/`);
      await page.waitForFunction(() => Number(document.body.dataset.checks ?? 0) >= 1);
      const loadMs = Date.now() - t0;
      // The default cell: lstm.cell, its IR as the CLI prints it.
      const examples = resolve("examples/cells");
      expect(await page.textContent("#stage")).toBe(cli(examples, ["compile", "lstm.cell", "--emit", "ir"]));
      await page.waitForFunction(() => !/checking/.test(document.getElementById("gpu")!.textContent ?? ""));
      const gpu = (await page.textContent("#gpu")) ?? "";
      expect(gpu).toMatch(/^WebGPU: /);

      // Start from rnn.cell, then replace its text with TINY: the file is checked as rnn.cell.
      let n = await checks(page);
      await page.selectOption("#picker", "rnn.cell");
      await afterCheck(page, n);
      n = await checks(page);
      await page.click(".cm-content");
      await page.keyboard.press("Control+A");
      await page.keyboard.insertText(TINY);
      await afterCheck(page, n);
      expect(await page.$$("#diagnostics li")).toHaveLength(0);
      expect(await editorText(page)).toBe(TINY);

      // One keystroke makes the error: `bz` -> `bzq` on line 8.
      await page.keyboard.press("Control+Home");
      for (let i = 0; i < 7; i++) await page.keyboard.press("ArrowDown");
      await page.keyboard.press("End");
      await page.keyboard.press("ArrowLeft");
      const k0 = Date.now();
      await page.keyboard.type("q");
      const item = await page.waitForSelector('#diagnostics li[data-code="E010"]', { timeout: 10_000 });
      const diagMs = Date.now() - k0;
      const broken = TINY.replace("+ bz)", "+ bzq)");
      const lines = broken.split("\n");
      const line = lines.findIndex((l) => l.includes("bzq")) + 1;
      const col = lines[line - 1]!.indexOf("bzq") + 1;
      expect([line, col]).toEqual([8, 33]);
      expect(await item.getAttribute("data-line")).toBe(String(line));
      expect(await item.getAttribute("data-col")).toBe(String(col));
      expect(await item.textContent()).toContain("unknown name 'bzq'");
      // The CLI agrees on the code and the place.
      writeFileSync(join(tmp, "rnn.cell"), broken);
      let stderr = "";
      try {
        cli(tmp, ["check", "rnn.cell"]);
      } catch (e) {
        stderr = String((e as { stderr?: string }).stderr);
      }
      expect(stderr).toContain(`error[E010]`);
      expect(stderr).toContain(`--> rnn.cell:${line}:${col}`);
      // Underlined in the editor, exactly the unknown name.
      expect(await page.textContent(".cm-lintRange-error")).toBe("bzq");
      expect(await page.textContent("#stage")).toContain("The cell has errors");
      await page.hover(".cm-lintRange-error");
      await page.waitForSelector(".cm-tooltip-lint", { timeout: 5_000 });
      expect(await page.textContent(".cm-tooltip-lint")).toContain("error[E010]");
      await page.screenshot({ path: join(SHOTS, "playground-error.png") });

      // Fixed: no diagnostics, and every stage tab shows what the CLI prints for the same text.
      n = await checks(page);
      await page.keyboard.press("Backspace");
      await afterCheck(page, n);
      expect(await page.$$("#diagnostics li")).toHaveLength(0);
      writeFileSync(join(tmp, "rnn.cell"), TINY);
      for (const stage of STAGES) {
        await page.click(`#tabs button[data-stage="${stage}"]`);
        expect(await page.getAttribute("#stage", "data-stage")).toBe(stage);
        expect(await page.textContent("#stage"), stage).toBe(
          cli(tmp, ["compile", "rnn.cell", "--emit", stage]),
        );
        if (stage === "grad-ir" || stage === "wgsl")
          await page.screenshot({ path: join(SHOTS, `playground-${stage}.png`) });
      }
      // The WebAssembly text: printed in the page by wabt, loaded when the tab first opens.
      await page.click('#tabs button[data-stage="wat"]');
      await page.waitForFunction(
        () => document.getElementById("stage")!.textContent!.startsWith(";;"),
        null,
        {
          timeout: 30_000,
        },
      );
      expect(await page.textContent("#stage")).toBe(cli(tmp, ["compile", "rnn.cell", "--emit", "wat"]));
      await page.screenshot({ path: join(SHOTS, "playground-wat.png") });

      // The artifact download is the compiler's: its JS kernels are `--emit js`'s text.
      const [dl] = await Promise.all([page.waitForEvent("download"), page.click("#artifact")]);
      expect(dl.suggestedFilename()).toBe("tiny.artifact.json");
      const artifact = JSON.parse(readFileSync(await dl.path(), "utf8")) as { js?: string; wgsl?: object };
      expect(artifact.js).toBe(cli(tmp, ["compile", "rnn.cell", "--emit", "js"]));
      expect(artifact.wgsl).toBeDefined();

      trained = await trainInPage(page);
      await page.screenshot({ path: join(SHOTS, "playground-train.png") });
      // At the README's size (docs/playground.png is this, colour-quantised).
      await page.setViewportSize({ width: 1200, height: 780 });
      await page.click('#tabs button[data-stage="grad-ir"]');
      await page.evaluate(() => new Promise(requestAnimationFrame));
      await page.screenshot({ path: join(SHOTS, "playground-readme.png") });
      await page.setViewportSize({ width: 1400, height: 900 });
      const [w] = await Promise.all([page.waitForEvent("download"), page.click("#weights")]);
      expect(w.suggestedFilename()).toBe("tiny.safetensors");
      trained += `; ${await trainOnWebGpu(page)}`;

      // The deep link: the hash decodes to the text, and a fresh page opened on it shows the same cell.
      const url = page.url();
      expect(await decodeHash(new URL(url).hash)).toEqual({ file: "rnn.cell", text: TINY });
      const again = await context.newPage();
      watch(again);
      await again.goto(url);
      await again.waitForFunction(() => Number(document.body.dataset.checks ?? 0) >= 1);
      expect(await editorText(again)).toBe(TINY);
      expect(await again.textContent("#stage")).toBe(cli(tmp, ["compile", "rnn.cell", "--emit", "ir"]));
      await again.close();

      // An `extends` variant with several cells: the chosen cell's IR, as with --cell.
      n = await checks(page);
      await page.selectOption("#picker", "greff.cell");
      await afterCheck(page, n);
      expect(await page.isVisible("#cell")).toBe(true);
      await page.selectOption("#cell", "lstm_nog");
      await page.click('#tabs button[data-stage="ir"]');
      expect(await page.textContent("#stage")).toBe(
        cli(examples, ["compile", "greff.cell", "--cell", "lstm_nog", "--emit", "ir"]),
      );
      // Notes of the checker (N001) are listed with their code, and their place in lstm.cell.
      expect(await page.textContent("#diagnostics")).toContain("note[N001]");
      expect(await page.textContent("#diagnostics")).toContain("lstm.cell:8:");
      await page.screenshot({ path: join(SHOTS, "playground-variant.png") });

      // Without WebGPU the page says what training falls back to.
      const plain = await context.newPage();
      watch(plain);
      await plain.addInitScript(() =>
        Object.defineProperty(Navigator.prototype, "gpu", { get: () => undefined }),
      );
      await plain.goto(`${base}/`);
      await plain.waitForFunction(() => !/checking/.test(document.getElementById("gpu")!.textContent ?? ""));
      expect(await plain.textContent("#gpu")).toBe("WebGPU not available: training uses WebAssembly");
      // And auto, the default backend, takes WebAssembly.
      await plain.waitForFunction(() => Number(document.body.dataset.checks ?? 0) >= 1);
      expect(await plain.inputValue("#backend")).toBe("auto");
      await plain.fill("#steps", "2");
      await plain.click("#start");
      await idle(plain, 30_000);
      expect(await status(plain, "backend")).toBe("wasm");
      await plain.close();

      console.log(`playground: load ${loadMs} ms, first diagnostic ${diagMs} ms after the keystroke, ${gpu}`);
      console.log(`playground training: ${trained}`);
      expect(errors).toEqual([]);
    } finally {
      await browser.close();
    }
  }, 300_000);
});

const status = (page: Page, key: string) =>
  page.evaluate((k) => document.getElementById("train-status")!.dataset[k] ?? "", key);
const idle = (page: Page, timeout: number) =>
  page.waitForFunction(() => document.getElementById("train-status")!.dataset.running === "false", null, {
    timeout,
  });
/** A polyline's points, in SVG coordinates (y grows downwards: a falling loss is a rising y). */
async function points(page: Page, chart: string, series: string): Promise<[number, number][]> {
  const text = await page.getAttribute(`#${chart} polyline[data-series="${series}"]`, "points");
  return (text ?? "")
    .split(" ")
    .filter(Boolean)
    .map((p) => p.split(",").map(Number) as [number, number]);
}
/** The eval loss the summary reports ("step N: eval loss X ..."). */
async function finalLoss(page: Page): Promise<number> {
  const text = (await page.textContent("#train-status")) ?? "";
  const m = /eval loss ([^\s,]+)/.exec(text);
  expect(m, text).not.toBeNull();
  return Number(m![1]);
}

/**
 * The typed cell and the reference LSTM on adding (T = 20, the defaults) on WebAssembly, stopped part way
 * and resumed: the step count goes on from where it stopped, the typed cell's eval loss falls to well
 * under chance (1/6, the variance of the sum of two U(0, 1) values: the best constant guess), and the
 * gradient-flow picture has both cells before and after training.
 */
const STEPS = 1500;

async function trainInPage(page: Page): Promise<string> {
  expect(await page.evaluate(() => crossOriginIsolated)).toBe(true);
  await page.selectOption("#task", "adding");
  await page.selectOption("#backend", "wasm");
  expect(await page.inputValue("#T")).toBe("20");
  expect(await page.inputValue("#steps")).toBe("300");
  // Enough steps that the stop lands part way on a loaded machine (a step takes ~1 ms here).
  await page.fill("#steps", String(STEPS));
  await page.click("#start");
  await page.waitForFunction(
    () => Number(document.getElementById("train-status")!.dataset.step) >= 30,
    null,
    { timeout: 30_000, polling: 5 },
  );
  await page.click("#stop");
  await idle(page, 30_000);
  const stoppedAt = Number(await status(page, "step"));
  expect(await page.textContent("#train-status")).toBe(
    `stopped at step ${stoppedAt}: resume continues from there`,
  );
  expect(stoppedAt).toBeGreaterThanOrEqual(30);
  expect(stoppedAt).toBeLessThan(STEPS);
  const before = (await points(page, "chart", "this cell eval")).length;
  await page.click("#resume");
  // The page keeps drawing while it trains (the worker has the work): the longest of 20 frames.
  const frameMs = await page.evaluate(
    () =>
      new Promise<number>((done) => {
        let [last, worst, n] = [performance.now(), 0, 0];
        const frame = (t: number) => {
          [worst, last] = [Math.max(worst, t - last), t];
          if (++n < 20) requestAnimationFrame(frame);
          else done(worst);
        };
        requestAnimationFrame(frame);
      }),
  );
  // Training on the page's own thread would hold a frame for the whole run (seconds); a loaded machine
  // stretches a frame to several hundred milliseconds without that.
  expect(frameMs).toBeLessThan(2000);
  await idle(page, 60_000);
  expect(await status(page, "from")).toBe(String(stoppedAt));
  expect(await status(page, "step")).toBe(String(STEPS));
  expect(await status(page, "backend")).toBe("wasm");
  const summary = (await page.textContent("#train-status")) ?? "";
  expect(summary).toMatch(/on WebAssembly, \d+ threads?$/);
  await page.evaluate(() => new Promise(requestAnimationFrame));

  // The curves were kept across the resume, and both cells have one, reaching the last step.
  for (const series of ["this cell", "lstm"]) {
    const ev = await points(page, "chart", `${series} eval`);
    expect(ev.length, series).toBeGreaterThan(before);
    expect((await points(page, "chart", `${series} train`)).length, series).toBeGreaterThanOrEqual(STEPS);
  }
  const ys = (await points(page, "chart", "this cell eval")).map(([, y]) => y);
  expect(ys.at(-1)!).toBeGreaterThan(ys[0]!);
  const loss = await finalLoss(page);
  expect(loss).toBeLessThan(1 / 6 / 4);

  // Gradient flow: a point per step t = 0..19 for each cell, at initialisation and after the last step.
  for (const series of ["this cell init", `this cell step ${STEPS}`, "lstm init", `lstm step ${STEPS}`])
    expect((await points(page, "gradflow", series)).length, series).toBe(20);
  return `${summary} (longest frame while training ${frameMs.toFixed(0)} ms)`;
}

/** A few steps on the browser's WebGPU adapter (CPU-emulated here: seconds a step), with finite losses. */
async function trainOnWebGpu(page: Page): Promise<string> {
  await page.selectOption("#backend", "webgpu");
  await page.uncheck("#reference");
  await page.fill("#steps", "3");
  await page.click("#start");
  await idle(page, 60_000);
  expect(await status(page, "backend")).toBe("webgpu");
  const summary = (await page.textContent("#train-status")) ?? "";
  expect(summary).toMatch(/^step 3: .* on WebGPU \(/);
  expect(Number.isFinite(await finalLoss(page))).toBe(true);
  expect(await points(page, "chart", "this cell train")).toHaveLength(3);
  expect(await points(page, "gradflow", "this cell step 3")).toHaveLength(20);
  return summary;
}
