// The learning curves (loss against step) and the gradient-flow picture (‖∂L/∂h_t‖ against t): one
// polyline per series on a log scale (both span orders of magnitude). Drawn as inline SVG: a plot library
// would outweigh the page's own code.
const NS = "http://www.w3.org/2000/svg";
const PAD = { left: 48, right: 12, top: 26, bottom: 22 };
/** Width of a character of the chart's 11px monospace font, for laying out the legend. */
const CHAR = 6.7;

export interface Series {
  /** Its polyline's data-series. */
  readonly name: string;
  /** In the legend, when not the name. */
  readonly label?: string;
  readonly color: string;
  readonly points: readonly (readonly [number, number])[];
  readonly dashed?: boolean;
  /** Drawn fainter (a noisy per-batch curve under its evaluations). */
  readonly faint?: boolean;
  /** Left out of the legend (a faint curve whose colour another series names). */
  readonly unlisted?: boolean;
}

export interface ChartOptions {
  /** The x axis' name, written before its largest value. */
  readonly x: string;
  readonly empty: string;
}

function el(tag: string, attrs: Record<string, string | number>, text?: string): SVGElement {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

/** Draws at the element's own size (so that text is never scaled); 480 x 200 before layout. */
export function renderChart(
  svg: SVGSVGElement,
  series: readonly Series[],
  opts: ChartOptions = { x: "step", empty: "no steps yet" },
): void {
  const W = svg.clientWidth || 480;
  const H = svg.clientHeight || 200;
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  const pts = series.flatMap((s) => s.points).filter(([, y]) => y > 0 && Number.isFinite(y));
  const parts: SVGElement[] = [];
  if (pts.length === 0) {
    // Broken into lines that fit the chart's width, centred: a half-width chart is narrow.
    const lines = wrap(opts.empty, Math.max(8, Math.floor((W - 16) / CHAR)));
    lines.forEach((line, i) =>
      parts.push(
        el(
          "text",
          { x: W / 2, y: H / 2 + (i - (lines.length - 1) / 2) * 14, "text-anchor": "middle", class: "empty" },
          line,
        ),
      ),
    );
    svg.replaceChildren(...parts);
    return;
  }
  let [xMax, yMin, yMax] = [1, Infinity, 0];
  for (const [x, y] of pts) [xMax, yMin, yMax] = [Math.max(xMax, x), Math.min(yMin, y), Math.max(yMax, y)];
  const lo = Math.floor(Math.log10(yMin));
  const hi = Math.max(lo + 1, Math.ceil(Math.log10(yMax)));
  const sx = (x: number) => PAD.left + (x / xMax) * (W - PAD.left - PAD.right);
  const sy = (y: number) => PAD.top + ((hi - Math.log10(y)) / (hi - lo)) * (H - PAD.top - PAD.bottom);
  // At most about six labelled decades, so that labels never overlap.
  const stride = Math.ceil((hi - lo) / 6);
  for (let e = lo; e <= hi; e += stride) {
    parts.push(
      el("line", { x1: PAD.left, x2: W - PAD.right, y1: sy(10 ** e), y2: sy(10 ** e), class: "grid" }),
    );
    parts.push(el("text", { x: PAD.left - 4, y: sy(10 ** e) + 4, "text-anchor": "end" }, `1e${e}`));
  }
  parts.push(el("text", { x: W - PAD.right, y: H - 6, "text-anchor": "end" }, `${opts.x} ${xMax}`));
  parts.push(el("text", { x: PAD.left, y: H - 6 }, "0"));
  let legend = PAD.left;
  for (const s of series) {
    const good = s.points.filter(([, y]) => y > 0 && Number.isFinite(y));
    if (good.length)
      parts.push(
        el("polyline", {
          points: good.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(" "),
          fill: "none",
          stroke: s.color,
          "stroke-width": s.faint ? 1 : 1.75,
          "stroke-opacity": s.faint ? 0.35 : 1,
          ...(s.dashed ? { "stroke-dasharray": "4 3" } : {}),
          "data-series": s.name,
        }),
      );
    if (s.unlisted) continue;
    const key = { x1: legend, x2: legend + 16, y1: 11, y2: 11, stroke: s.color, "stroke-width": 2 };
    parts.push(el("line", s.dashed ? { ...key, "stroke-dasharray": "4 3" } : key));
    const label = s.label ?? s.name;
    parts.push(el("text", { x: legend + 20, y: 15 }, label));
    legend += 20 + label.length * CHAR + 14;
  }
  svg.replaceChildren(...parts);
}

/** Words into lines of at most `width` characters (a longer word stays whole on its own line). */
export function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/).filter((w) => w)) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines;
}
