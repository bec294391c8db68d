// The numbers of `cellc compare`: one row per (cell, seed) as summary.json holds them, and the table per
// cell on stdout and in report.html.

/** One line of summary.json: a cell trained with one seed. */
export interface RunSummary {
  readonly cell: string;
  readonly file: string;
  readonly seed: number;
  readonly final_eval_loss: number;
  readonly solved: boolean;
  readonly steps_to_solve: number | null;
  readonly ms_per_step: number;
  readonly params: number;
}

/** The table's columns per cell, as numbers (formatting is `formatTable`'s). */
export interface CellSummary {
  readonly cell: string;
  readonly runs: number;
  readonly lossMean: number;
  /** Sample standard deviation over seeds (0 for one seed). */
  readonly lossSd: number;
  readonly solved: number;
  /** Median over the runs that solved the task; null when none did. */
  readonly medianStepsToSolve: number | null;
  readonly msPerStep: number;
  readonly params: number;
}

const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Per cell, in the order the cells first appear. */
export function summarise(runs: readonly RunSummary[]): CellSummary[] {
  const groups = new Map<string, RunSummary[]>();
  for (const r of runs) {
    const g = groups.get(r.cell);
    if (g) g.push(r);
    else groups.set(r.cell, [r]);
  }
  return [...groups].map(([cell, rs]) => {
    const losses = rs.map((r) => r.final_eval_loss);
    const m = mean(losses);
    const sd = rs.length > 1 ? Math.sqrt(losses.reduce((a, x) => a + (x - m) ** 2, 0) / (rs.length - 1)) : 0;
    const solvedAt = rs.filter((r) => r.solved && r.steps_to_solve !== null).map((r) => r.steps_to_solve!);
    return {
      cell,
      runs: rs.length,
      lossMean: m,
      lossSd: sd,
      solved: rs.filter((r) => r.solved).length,
      medianStepsToSolve: solvedAt.length ? median(solvedAt) : null,
      msPerStep: mean(rs.map((r) => r.ms_per_step)),
      params: rs[0]!.params,
    };
  });
}

export const TABLE_HEADER = ["cell", "final eval loss", "solved", "steps to solve", "ms/step", "params"];

/** The table's cells as text: loss mean±sd, solved k/n, median steps to solve (or -), ms/step, params. */
export function tableRows(cells: readonly CellSummary[]): string[][] {
  return cells.map((c) => [
    c.cell,
    `${fmt(c.lossMean)} ± ${fmt(c.lossSd)}`,
    `${c.solved}/${c.runs}`,
    c.medianStepsToSolve === null ? "-" : String(c.medianStepsToSolve),
    c.msPerStep.toFixed(c.msPerStep < 10 ? 2 : 1),
    String(c.params),
  ]);
}

/** Four significant digits, in exponent form when small. */
export function fmt(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  if (x !== 0 && Math.abs(x) < 1e-3) return x.toExponential(2);
  const s = x.toPrecision(4);
  return s.includes(".") && !s.includes("e") ? s.replace(/\.?0+$/, "") : s;
}

/** Columns padded to their widths: the first left-aligned, the others right-aligned. */
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const all = [header, ...rows];
  const w = header.map((_, j) => all.reduce((m, r) => Math.max(m, [...r[j]!].length), 0));
  const line = (r: readonly string[]) =>
    r.map((v, j) => (j === 0 ? v.padEnd(w[j]!) : v.padStart(w[j]!))).join("  ");
  return [line(header), ...rows.map(line)].join("\n") + "\n";
}
