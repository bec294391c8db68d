// The pictures of `cellc compare` and `cellc gradflow`: Vega-Lite specs (plain data, testable as such),
// rendered to SVG by vega and to PNG by resvg. Both libraries are loaded only here, on first use.
import type { TopLevelSpec } from "vega-lite";
import { cellColors } from "./colors.js";
import { fmtLoss } from "./summary.js";

/** One point of a learning curve: a cell's eval loss at an optimiser step, for one seed. */
export interface CurvePoint {
  readonly cell: string;
  readonly seed: number;
  readonly step: number;
  readonly loss: number;
}

/** One row of the curves' data: the loss at a step over the seeds. */
export interface CurveRow {
  readonly cell: string;
  readonly step: number;
  readonly mean: number;
  readonly min: number;
  readonly max: number;
  readonly seeds: number;
}

/** Mean, min and max over seeds at each step, per cell, in the order the cells and steps come. */
export function curveRows(points: readonly CurvePoint[]): CurveRow[] {
  const groups = new Map<string, Map<number, number[]>>();
  for (const p of points) {
    let byStep = groups.get(p.cell);
    if (!byStep) groups.set(p.cell, (byStep = new Map()));
    let ls = byStep.get(p.step);
    if (!ls) byStep.set(p.step, (ls = []));
    ls.push(p.loss);
  }
  const rows: CurveRow[] = [];
  for (const [cell, byStep] of groups)
    for (const [step, ls] of [...byStep].sort((a, b) => a[0] - b[0]))
      rows.push({
        cell,
        step,
        mean: ls.reduce((a, b) => a + b, 0) / ls.length,
        min: ls.reduce((a, b) => Math.min(a, b), Infinity),
        max: ls.reduce((a, b) => Math.max(a, b), -Infinity),
        seeds: ls.length,
      });
  return rows;
}

const WIDTH = 560;
const HEIGHT = 320;

/** What every plot shares: the schema, its title, the size, a white background. */
function frame(title: string) {
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title,
    width: WIDTH,
    height: HEIGHT,
    background: "white",
  } as const;
}

/** A cell as a picture shows it: its label, the name its colour comes from, and its results in words. */
export interface PlotCell {
  readonly label: string;
  readonly name: string;
  /** After the label in the legend (final losses, solved k/n). */
  readonly legend?: string;
}

/** The legend's text of each cell and its colour (cellColors: by name, the same in every picture). */
function cellScale(cells: readonly PlotCell[]) {
  const keys = cells.map((c) => (c.legend ? `${c.label}: ${c.legend}` : c.label));
  const colors = cellColors(cells.map((c) => c.name));
  const keyOf = new Map(cells.map((c, i) => [c.label, keys[i]!]));
  return { keys, colors, keyOf: (label: string) => keyOf.get(label) ?? label };
}

/** Tick labels of a log axis in one format (`1e-3`, `2e-1`), not a mix of decimals and exponents. */
const LOG_AXIS = { format: "~e" } as const;

/** A horizontal reference line across the plot, its label under it at the right end. */
function referenceLine(y: number, text: string, color: string, dash: number[]) {
  const enc = { y: { field: "y", type: "quantitative" as const } };
  return {
    data: { values: [{ y, text }] },
    layer: [
      { mark: { type: "rule" as const, strokeDash: dash, color }, encoding: enc },
      {
        mark: {
          type: "text" as const,
          align: "right" as const,
          baseline: "top" as const,
          dx: -4,
          dy: 3,
          color,
          fontSize: 11,
        },
        encoding: { ...enc, x: { value: WIDTH }, text: { field: "text", type: "nominal" as const } },
      },
    ],
  };
}

/**
 * Eval loss against step: a line for the mean over seeds and a band from min to max, one colour per
 * cell (by its name: cellColors), the legend giving each cell's final results; the chance level and the
 * criterion's threshold, when known, as labelled dashed lines. A log axis drops points that are not
 * positive: they have no place on it.
 */
export function curvesSpec(
  rows: readonly CurveRow[],
  opts: {
    title: string;
    logY?: boolean;
    chance?: number;
    solvedBelow?: number;
    cells: readonly PlotCell[];
    /** Over the legend: what its entries give. */
    legendTitle?: string;
  },
): TopLevelSpec {
  const log = opts.logY ?? false;
  const values = log ? rows.filter((r) => r.min > 0 && Number.isFinite(r.max)) : [...rows];
  const y = {
    type: "quantitative" as const,
    title: "eval loss",
    scale: log ? { type: "log" as const } : {},
    ...(log ? { axis: LOG_AXIS } : {}),
  };
  const scale = cellScale(opts.cells);
  const color = {
    field: "key",
    type: "nominal" as const,
    title: opts.legendTitle ?? "cell",
    scale: { domain: scale.keys, range: scale.colors },
  };
  const x = { field: "step", type: "quantitative" as const, title: "optimiser step" };
  return {
    ...frame(opts.title),
    // The legend's swatches in full colour, not at the band's opacity; labels with a file path in full.
    config: { legend: { symbolOpacity: 1, labelLimit: 600, titleLimit: 600 } },
    data: { values: values.map((r) => ({ ...r, key: scale.keyOf(r.cell) })) },
    layer: [
      {
        mark: { type: "area", opacity: 0.2 },
        encoding: { x, y: { ...y, field: "min" }, y2: { field: "max" }, color },
      },
      { mark: { type: "line", strokeWidth: 2 }, encoding: { x, y: { ...y, field: "mean" }, color } },
      ...(opts.chance !== undefined && Number.isFinite(opts.chance)
        ? [referenceLine(opts.chance, `chance ${fmtLoss(opts.chance)}`, "#777", [4, 4])]
        : []),
      ...(opts.solvedBelow !== undefined
        ? [referenceLine(opts.solvedBelow, `solved below ${fmtLoss(opts.solvedBelow)}`, "#2f8f4f", [8, 3])]
        : []),
    ],
  };
}

/** One cell's state-gradient norms ‖∂L/∂s_t‖ at each step, at initialisation and after training. */
export interface GradflowSeries {
  readonly cell: string;
  readonly init: readonly number[];
  readonly trained: readonly number[];
}

export interface GradflowRow {
  readonly cell: string;
  readonly phase: string;
  readonly t: number;
  readonly norm: number;
}

/** The rows of the gradient-flow plot: positive finite norms only (a log axis has no place for 0). */
export function gradflowRows(series: readonly GradflowSeries[], phases: readonly [string, string]) {
  const rows: GradflowRow[] = [];
  for (const s of series)
    ([s.init, s.trained] as const).forEach((norms, k) =>
      norms.forEach((norm, t) => {
        if (norm > 0 && Number.isFinite(norm)) rows.push({ cell: s.cell, phase: phases[k]!, t, norm });
      }),
    );
  return rows;
}

/**
 * ‖∂L/∂h_t‖ against t on a log axis, a colour per cell (by name), solid at initialisation and dashed
 * after training; the legend gives each cell's loss at both.
 */
export function gradflowSpec(
  rows: readonly GradflowRow[],
  opts: { title: string; cells: readonly PlotCell[]; phases: readonly [string, string]; state: string },
): TopLevelSpec {
  const scale = cellScale(opts.cells);
  return {
    ...frame(opts.title),
    config: { legend: { labelLimit: 600, titleLimit: 600 } },
    data: { values: rows.map((r) => ({ ...r, key: scale.keyOf(r.cell) })) },
    mark: { type: "line", strokeWidth: 2 },
    encoding: {
      x: { field: "t", type: "quantitative", title: "step t" },
      y: {
        field: "norm",
        type: "quantitative",
        title: `‖∂L/∂${opts.state}_t‖ (loss at the last step)`,
        scale: { type: "log" },
        axis: LOG_AXIS,
      },
      color: {
        field: "key",
        type: "nominal",
        title: "cell: eval loss at initialisation → after training",
        scale: { domain: scale.keys, range: scale.colors },
      },
      strokeDash: {
        field: "phase",
        type: "nominal",
        title: "",
        scale: {
          domain: [...opts.phases],
          range: [
            [1, 0],
            [6, 4],
          ],
        },
      },
    },
  };
}

interface VegaModule {
  View: new (
    runtime: unknown,
    opts: { renderer: "none" },
  ) => {
    toSVG(): Promise<string>;
    finalize(): void;
  };
  parse(spec: unknown): unknown;
}
interface VegaLiteModule {
  compile(spec: TopLevelSpec): { spec: unknown };
}

/** A Vega-Lite spec rendered to SVG text, in Node, with no network (every spec here carries its data). */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const vega = (await import("vega")) as unknown as VegaModule;
  const vl = (await import("vega-lite")) as unknown as VegaLiteModule;
  const view = new vega.View(vega.parse(vl.compile(spec).spec), { renderer: "none" });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** SVG text rasterised to PNG at `scale` times its size (2: sharp on high-density screens). */
export async function svgToPng(svg: string, scale = 2): Promise<Uint8Array> {
  const { Resvg } = await import("@resvg/resvg-js");
  const r = new Resvg(svg, {
    fitTo: { mode: "zoom", value: scale },
    font: { loadSystemFonts: true, defaultFontFamily: "DejaVu Sans" },
  });
  return r.render().asPng();
}
