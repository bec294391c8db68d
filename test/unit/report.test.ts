import { describe, expect, it } from "vitest";
import {
  curveRows,
  curvesSpec,
  gradflowRows,
  gradflowSpec,
  renderSvg,
  svgToPng,
  type CurvePoint,
} from "../../workbench/report/plots.js";
import { escapeHtml, reportHtml } from "../../workbench/report/html.js";
import { markPaths, pngSize, svgSize } from "./plot-helpers.js";
import {
  fmt,
  formatTable,
  median,
  summarise,
  tableRows,
  type RunSummary,
} from "../../workbench/report/summary.js";

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
    const spec = curvesSpec(rows, { title: "adding", logY: true, chance: 0.167, cells: ["rnn", "lstm"] });
    expect((spec as { data: { values: unknown[] } }).data.values).toEqual(rows);
    const svg = await renderSvg(spec);
    expect(svg.startsWith("<svg")).toBe(true);
    expect(svg.trimEnd().endsWith("</svg>")).toBe(true);
    const [w, h] = svgSize(svg);
    expect(w).toBeGreaterThan(560);
    expect(h).toBeGreaterThan(320);
    expect(markPaths(svg, "line mark")).toEqual([4, 4]);
    expect(markPaths(svg, "area mark")).toEqual([8, 8]); // 4 steps along the top, 4 back along the bottom
    expect(svg).toContain('aria-roledescription="rule mark"'); // chance level
    const png = await svgToPng(svg, 2);
    expect(pngSize(png)).toEqual([2 * w, 2 * h]);
    expect(png.length).toBeGreaterThan(5000);
  });

  it("a log axis drops non-positive losses", () => {
    const rows = curveRows([...points, { cell: "rnn", seed: 0, step: 50, loss: 0 }]);
    const spec = curvesSpec(rows, { title: "t", logY: true, cells: ["rnn", "lstm"] });
    const values = (spec as { data: { values: { step: number }[] } }).data.values;
    expect(values.some((v) => v.step === 50)).toBe(false);
    const linear = curvesSpec(rows, { title: "t", logY: false, cells: ["rnn", "lstm"] });
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
      gradflowSpec(rows, { title: "g", cells: ["rnn", "lstm"], phases, state: "h" }),
    );
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
    params: 100,
  });

  it("mean ± sample sd, solved k/n, median steps over the solved runs", () => {
    const s = summarise([
      run("a", 0, 1, null),
      run("a", 1, 3, 400),
      run("a", 2, 5, 200),
      run("b", 0, 0.5, null),
    ]);
    expect(s[0]).toMatchObject({
      cell: "a",
      lossMean: 3,
      lossSd: 2,
      solved: 2,
      medianStepsToSolve: 300,
      msPerStep: 3,
    });
    expect(s[1]).toMatchObject({ cell: "b", lossSd: 0, solved: 0, medianStepsToSolve: null });
    const text = formatTable(["cell", "loss", "solved", "steps", "ms", "params"], tableRows(s));
    expect(text.split("\n")[1]).toMatch(/^a\s+3 ± 2\s+2\/3\s+300\s+3\.00\s+100$/);
    expect(text.split("\n")[2]).toMatch(/^b\s+0\.5 ± 0\s+0\/1\s+-\s+2\.00\s+100$/);
  });

  it("numbers", () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 2, 3])).toBe(2.5);
    expect(fmt(1200)).toBe("1200");
    expect(fmt(0.16667)).toBe("0.1667");
    expect(fmt(0.00012345)).toBe("1.23e-4");
    expect(fmt(12.5)).toBe("12.5");
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
