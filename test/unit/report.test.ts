import { describe, expect, it } from "vitest";
import {
  curveRows,
  curvesSpec,
  gradflowRows,
  gradflowSpec,
  renderSvg,
  svgToPng,
  type CurvePoint,
  type CurveRow,
} from "../../workbench/report/plots.js";
import { escapeHtml, reportHtml } from "../../workbench/report/html.js";
import { markPaths, pngSize, svgSize } from "./plot-helpers.js";
import {
  cellTable,
  finalScores,
  fmtLoss,
  fmtPercent,
  fmtSpread,
  formatTable,
  legendText,
  median,
  runTable,
  summarise,
  type RunSummary,
} from "../../workbench/report/summary.js";
import { cellColors, PALETTE } from "../../workbench/report/colors.js";

const cells = (...names: string[]) => names.map((name) => ({ label: name, name }));
/** The y axis' tick labels (10px, right-aligned left of the axis), and the texts of the text marks. */
const yTicks = (svg: string) =>
  [
    ...svg.matchAll(
      /<text text-anchor="end" transform="translate\(-[\d.]+,[^"]*"[^>]*font-size="10px"[^>]*>([^<]*)<\/text>/g,
    ),
  ].map((m) => m[1]!);
const markTexts = (svg: string) =>
  [...svg.matchAll(/aria-roledescription="text mark"[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]!);

const points: CurvePoint[] = [];
const losses = (cell: string, seed: number, step: number) =>
  (cell === "lstm" ? 0.5 : 1) / (1 + step / 10) + 0.01 * seed;
for (const cell of ["rnn", "lstm"])
  for (const seed of [0, 1, 2])
    for (const step of [10, 20, 30, 40]) points.push({ cell, seed, step, loss: losses(cell, seed, step) });

describe("learning curves", () => {
  it("rows are the mean, min and max over seeds of the given losses", () => {
    const rows = curveRows(points);
    expect(rows).toHaveLength(8);
    for (const r of rows) {
      const ls = [0, 1, 2].map((s) => losses(r.cell, s, r.step));
      expect(r.mean).toBeCloseTo((ls[0]! + ls[1]! + ls[2]!) / 3, 14);
      expect(r.min).toBe(ls[0]);
      expect(r.max).toBe(ls[2]);
      expect(r.seeds).toBe(3);
    }
  });

  it("the spec carries exactly those rows; the SVG has a line and a band per cell, a vertex per step", async () => {
    const rows = curveRows(points);
    const spec = curvesSpec(rows, {
      title: "adding",
      logY: true,
      chance: 0.167,
      solvedBelow: 0.01,
      cells: [
        { label: "rnn", name: "rnn", legend: "1.75e-1, solved 0/3" },
        { label: "lstm", name: "lstm" },
      ],
    });
    const values = (spec as { data: { values: (CurveRow & { key: string })[] } }).data.values;
    expect(values.map(({ key: _, ...r }) => r)).toEqual(rows);
    expect(new Set(values.map((v) => `${v.cell}=${v.key}`))).toEqual(
      new Set(["rnn=rnn: 1.75e-1, solved 0/3", "lstm=lstm"]),
    );
    const svg = await renderSvg(spec);
    expect(svg.startsWith("<svg")).toBe(true);
    expect(svg.trimEnd().endsWith("</svg>")).toBe(true);
    const [w, h] = svgSize(svg);
    expect(w).toBeGreaterThan(560);
    expect(h).toBeGreaterThan(320);
    expect(markPaths(svg, "line mark")).toEqual([4, 4]);
    expect(markPaths(svg, "area mark")).toEqual([8, 8]); // 4 steps along the top, 4 back along the bottom
    // The chance level and the criterion, each a dashed rule with its label.
    expect(svg.match(/aria-roledescription="rule mark"/g)).toHaveLength(2);
    expect(markTexts(svg)).toEqual(["chance 1.67e-1", "solved below 1.00e-2"]);
    // The legend names each cell with its results, in its colour by name.
    expect(svg).toContain(">rnn: 1.75e-1, solved 0/3</text>");
    expect(svg).toContain(`fill="${PALETTE[0]}"`);
    expect(svg).toContain(`fill="${PALETTE[1]}"`);
    // The log axis' ticks in one format: 1e-1, 2e-1, ...
    const ticks = yTicks(svg);
    expect(ticks.length).toBeGreaterThan(2);
    for (const t of ticks) expect(t).toMatch(/^\de[+-]\d+$/);
    const png = await svgToPng(svg, 2);
    expect(pngSize(png)).toEqual([2 * w, 2 * h]);
    expect(png.length).toBeGreaterThan(5000);
  });

  it("a log axis drops non-positive losses", () => {
    const rows = curveRows([...points, { cell: "rnn", seed: 0, step: 50, loss: 0 }]);
    const spec = curvesSpec(rows, { title: "t", logY: true, cells: cells("rnn", "lstm") });
    const values = (spec as { data: { values: { step: number }[] } }).data.values;
    expect(values.some((v) => v.step === 50)).toBe(false);
    const linear = curvesSpec(rows, { title: "t", logY: false, cells: cells("rnn", "lstm") });
    expect((linear as { data: { values: unknown[] } }).data.values).toHaveLength(rows.length);
  });
});

describe("gradient-flow picture", () => {
  it("two lines per cell (solid, dashed), one vertex per positive norm", async () => {
    const decay = Array.from({ length: 20 }, (_, t) => 0.5 ** (19 - t));
    const flat = Array.from({ length: 20 }, () => 0.3);
    const series = [
      { cell: "rnn", init: decay, trained: decay.map((v) => v * 2) },
      { cell: "lstm", init: flat, trained: [0, ...flat.slice(1)] },
    ];
    const phases = ["at initialisation", "after 100 steps"] as const;
    const rows = gradflowRows(series, phases);
    expect(rows).toHaveLength(79); // the 0 has no place on a log axis
    expect(rows.filter((r) => r.cell === "rnn" && r.phase === phases[0]).map((r) => r.norm)).toEqual(decay);
    const svg = await renderSvg(
      gradflowSpec(rows, {
        title: "g",
        cells: [
          { label: "rnn", name: "rnn", legend: "1.70e-1 → 1.60e-1" },
          { label: "lstm", name: "lstm", legend: "1.80e-1 → 2.00e-3" },
        ],
        phases,
        state: "h",
      }),
    );
    expect(svg).toContain(">rnn: 1.70e-1 → 1.60e-1</text>");
    expect(svg).toContain(">lstm: 1.80e-1 → 2.00e-3</text>");
    expect(yTicks(svg).length).toBeGreaterThan(2);
    for (const t of yTicks(svg)) expect(t).toMatch(/^\de[+-]\d+$/);
    expect(markPaths(svg, "line mark").sort()).toEqual([19, 20, 20, 20]);
    expect(svg).toMatch(/stroke-dasharray="6,4"/);
    const [w, h] = svgSize(svg);
    expect(pngSize(await svgToPng(svg, 1))).toEqual([w, h]);
  });
});

describe("summary table", () => {
  const run = (cell: string, seed: number, loss: number, steps: number | null): RunSummary => ({
    cell,
    file: `${cell}.cell`,
    seed,
    final_eval_loss: loss,
    solved: steps !== null,
    steps_to_solve: steps,
    ms_per_step: 2 + seed,
    ms_per_step_min: 1,
    ms_per_step_max: 10 + seed,
    params: 100,
  });

  it("mean ± sample sd, solved k/n, median steps over the solved runs; one format per column", () => {
    const runs = [run("a", 0, 1, null), run("a", 1, 3, 400), run("a", 2, 5, 200), run("b", 0, 0.5, null)];
    const s = summarise(runs);
    expect(s[0]).toMatchObject({
      cell: "a",
      lossMean: 3,
      lossSd: 2,
      solved: 2,
      medianStepsToSolve: 300,
      msPerStep: 3,
    });
    expect(s[1]).toMatchObject({ cell: "b", lossSd: 0, solved: 0, medianStepsToSolve: null });
    const t = cellTable(runs);
    expect(t.header).toEqual(["cell", "final eval loss", "solved", "steps to solve", "ms/step", "params"]);
    const text = formatTable(t.header, t.rows);
    expect(text.split("\n")[1]).toMatch(/^a\s+3\.00e\+0 ± 2\.0e\+0\s+2\/3\s+300\s+3\.00\s+100$/);
    expect(text.split("\n")[2]).toMatch(/^b\s+5\.00e-1\s+0\/1\s+-\s+2\.00\s+100$/); // one run: no spread
    const seeds = runTable(runs);
    expect(seeds.header).toEqual([
      "cell",
      "seed",
      "final eval loss",
      "solved at step",
      "ms/step",
      "min-max ms/step",
    ]);
    expect(seeds.rows[1]).toEqual(["a", "1", "3.00e+0", "400", "3.00", "1.00–11.00"]);
    expect(legendText(s[0]!)).toBe("3.00e+0 ± 2.0e+0, solved 2/3");
  });

  it("without a criterion there is no solved column; class targets add the accuracy", () => {
    const plain = (seed: number, loss: number, accuracy?: number): RunSummary => ({
      cell: "a",
      file: "a.cell",
      seed,
      final_eval_loss: loss,
      ...(accuracy !== undefined ? { final_eval_accuracy: accuracy } : {}),
      ms_per_step: 1,
      params: 10,
    });
    const t = cellTable([plain(0, 0.25), plain(1, 0.75)]);
    expect(t.header).toEqual(["cell", "final eval loss", "ms/step", "params"]);
    expect(t.rows[0]).toEqual(["a", "5.00e-1 ± 3.5e-1", "1.00", "10"]);
    const c = cellTable([plain(0, 0.25, 0.9), plain(1, 0.75, 0.7)]);
    expect(c.header).toEqual(["cell", "final eval loss", "accuracy", "ms/step", "params"]);
    expect(c.rows[0]![2]).toBe("80.0% ± 14.1%");
    expect(runTable([plain(0, 0.25, 0.9)]).header).toEqual([
      "cell",
      "seed",
      "final eval loss",
      "accuracy",
      "ms/step",
      "min-max ms/step",
    ]);
    // One seed: the value alone.
    expect(cellTable([plain(0, 0.25, 0.9)]).rows[0]).toEqual(["a", "2.50e-1", "90.0%", "1.00", "10"]);
  });

  it("a task's own scores (selective copying's recall accuracy) are columns of their own", () => {
    const metrics = [
      { step: 10, split: "eval", loss: 1, accuracy: 0.5, recall_accuracy: 0.2 },
      { step: 20, split: "train", loss: 0.5, recall_accuracy: 0.1 },
      { step: 20, split: "eval", loss: 0.4, accuracy: 0.9, recall_accuracy: 0.75 },
    ];
    // The last eval's, and not the accuracy itself.
    expect(finalScores(metrics)).toEqual({ recall_accuracy: 0.75 });
    expect(finalScores([{ step: 1, split: "eval", loss: 1, accuracy: 0.5 }])).toBeUndefined();
    const run = (seed: number, recall: number): RunSummary => ({
      cell: "a",
      file: "a.cell",
      seed,
      final_eval_loss: 0.5,
      final_eval_accuracy: 0.9,
      final_eval_scores: { recall_accuracy: recall },
      solved: recall >= 0.99,
      steps_to_solve: recall >= 0.99 ? 100 : null,
      ms_per_step: 1,
      params: 10,
    });
    const t = cellTable([run(0, 0.995), run(1, 0.985)]);
    expect(t.header).toEqual(["cell", "final eval loss", "accuracy", "recall accuracy", "solved", "steps to solve", "ms/step", "params"]); // prettier-ignore
    expect(t.rows[0]![3]).toBe("99.0% ± 0.7%");
    expect(runTable([run(0, 0.995)]).rows[0]).toEqual([
      "a",
      "0",
      "5.00e-1",
      "90.0%",
      "99.5%",
      "100",
      "1.00",
      "-",
    ]);
  });

  it("numbers", () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 2, 3])).toBe(2.5);
    expect(fmtLoss(0.16667)).toBe("1.67e-1");
    expect(fmtLoss(0.00012345)).toBe("1.23e-4");
    expect(fmtLoss(1200)).toBe("1.20e+3");
    expect(fmtSpread(0.001008)).toBe("1.0e-3");
    expect(fmtPercent(0.9731)).toBe("97.3%");
    expect(fmtLoss(NaN)).toBe("NaN");
  });
});

describe("cell colours", () => {
  it("by name: the built-in three fixed, any other name always the same, none shared in a picture", () => {
    expect(cellColors(["rnn", "lstm", "gru"])).toEqual([PALETTE[0], PALETTE[1], PALETTE[2]]);
    expect(cellColors(["gru", "rnn"])).toEqual([PALETTE[2], PALETTE[0]]);
    const mine = cellColors(["mycell"])[0]!;
    expect(cellColors(["lstm", "mycell", "rnn"])[1]).toBe(mine);
    expect(PALETTE.slice(3)).toContain(mine);
    // Two cells of one name (from two files) get two colours; so do more names than the palette has.
    const two = cellColors(["lstm", "lstm"]);
    expect(two[0]).toBe(PALETTE[1]);
    expect(two[1]).not.toBe(PALETTE[1]);
    const names = Array.from({ length: 10 }, (_, i) => `cell${i}`);
    expect(new Set(cellColors(names)).size).toBe(10);
  });
});

describe("report.html", () => {
  it("is one page: the command, the table escaped, the SVG inline, no scripts or links", () => {
    const html = reportHtml({
      title: "cellc compare",
      command: "cellc compare a.cell --task adding",
      header: ["cell", "loss"],
      rows: [["<b>x</b>", "0.1"]],
      figures: [{ caption: "curves", svg: '<?xml version="1.0"?>\n<svg width="1" height="1"></svg>' }],
      machine: "test machine",
    });
    expect(html).toContain("<code>cellc compare a.cell --task adding</code>");
    expect(html).toContain("<td>&lt;b&gt;x&lt;/b&gt;</td>");
    expect(html).toContain('<svg width="1" height="1"></svg>');
    expect(html).not.toContain("<?xml");
    expect(html).not.toMatch(/<script|<link|src=/);
    expect(html).toContain("test machine");
    expect(escapeHtml(`"'&`)).toBe("&quot;&#39;&amp;");
  });
});
