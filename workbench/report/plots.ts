// The pictures of `cellc compare` and `cellc gradflow`: Vega-Lite specs (plain data, testable as such),
// rendered to SVG by vega and to PNG by resvg. Both libraries are loaded only here, on first use.
import type { TopLevelSpec } from "vega-lite";

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

/**
 * Eval loss against step: a line for the mean over seeds and a band from min to max, one colour per
 * cell (in the order given). A log axis drops points that are not positive: they have no place on it.
 */
export function curvesSpec(
  rows: readonly CurveRow[],
  opts: { title: string; logY?: boolean; chance?: number; cells: readonly string[] },
): TopLevelSpec {
  const log = opts.logY ?? false;
  const values = log ? rows.filter((r) => r.min > 0 && Number.isFinite(r.max)) : [...rows];
  const y = { type: "quantitative" as const, title: "eval loss", scale: log ? { type: "log" as const } : {} };
  const color = {
    field: "cell",
    type: "nominal" as const,
    title: "cell",
    scale: { domain: [...opts.cells] },
  };
  const x = { field: "step", type: "quantitative" as const, title: "optimiser step" };
  return {
    ...frame(opts.title),
    // The legend's swatches in full colour, not at the band's opacity; labels with a file path in full.
    config: { legend: { symbolOpacity: 1, labelLimit: 400 } },
    data: { values: values.map((r) => ({ ...r })) },
    layer: [
      {
        mark: { type: "area", opacity: 0.2 },
        encoding: { x, y: { ...y, field: "min" }, y2: { field: "max" }, color },
      },
      { mark: { type: "line", strokeWidth: 2 }, encoding: { x, y: { ...y, field: "mean" }, color } },
      ...(opts.chance !== undefined
        ? [
            {
              data: { values: [{ chance: opts.chance }] },
              mark: { type: "rule" as const, strokeDash: [4, 4], color: "#888" },
              encoding: { y: { field: "chance", type: "quantitative" as const } },
            },
          ]
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

/** ‖∂L/∂h_t‖ against t on a log axis, a colour per cell, solid at initialisation and dashed after training. */
export function gradflowSpec(
  rows: readonly GradflowRow[],
  opts: { title: string; cells: readonly string[]; phases: readonly [string, string]; state: string },
): TopLevelSpec {
  return {
    ...frame(opts.title),
    config: { legend: { labelLimit: 400 } },
    data: { values: rows.map((r) => ({ ...r })) },
    mark: { type: "line", strokeWidth: 2 },
    encoding: {
      x: { field: "t", type: "quantitative", title: "step t" },
      y: {
        field: "norm",
        type: "quantitative",
        title: `‖∂L/∂${opts.state}_t‖ (loss at the last step)`,
        scale: { type: "log" },
      },
      color: { field: "cell", type: "nominal", title: "cell", scale: { domain: [...opts.cells] } },
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
