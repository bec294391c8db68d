// The numbers of `cellc compare`: one row per (cell, seed) as summary.json holds them, the table per cell
// on stdout and in report.html, and the per-seed table of report.html. A column is there only when it
// means something: "solved" and "steps to solve" where the data has a criterion, "accuracy" for class
// targets. Each column has one number format.

/** One line of summary.json: a cell trained with one seed. */
export interface RunSummary {
  readonly cell: string;
  readonly file: string;
  readonly seed: number;
  readonly final_eval_loss: number;
  /** Class targets only. */
  readonly final_eval_accuracy?: number;
  /** A task's own scores at the last evaluation (selective copying's `recall_accuracy`), by name. */
  readonly final_eval_scores?: Readonly<Record<string, number>>;
  /** Only where there is a criterion (the task's, or `--solved-below`). */
  readonly solved?: boolean;
  readonly steps_to_solve?: number | null;
  /** Mean time of an update, and the fastest and slowest update. */
  readonly ms_per_step: number;
  readonly ms_per_step_min?: number;
  readonly ms_per_step_max?: number;
  readonly params: number;
}

/** The table's columns per cell, as numbers (formatting is `cellTable`'s). */
export interface CellSummary {
  readonly cell: string;
  readonly runs: number;
  readonly lossMean: number;
  /** Sample standard deviation over seeds (0 for one seed). */
  readonly lossSd: number;
  readonly accuracyMean?: number;
  readonly accuracySd?: number;
  /** Per task score (RunSummary.final_eval_scores): mean and sample sd over the runs that have it. */
  readonly scores: Readonly<Record<string, { readonly mean: number; readonly sd: number }>>;
  /** Runs that met the criterion; undefined without one. */
  readonly solved?: number;
  /** Median over the runs that met the criterion; null when none did. */
  readonly medianStepsToSolve: number | null;
  readonly msPerStep: number;
  readonly params: number;
}

const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
/** Sample standard deviation (0 for one value). */
const sd = (xs: readonly number[]) => {
  if (xs.length < 2) return 0;
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1));
};

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
    const acc = rs.map((r) => r.final_eval_accuracy).filter((a): a is number => a !== undefined);
    const judged = rs.filter((r) => r.solved !== undefined);
    const scores: Record<string, { mean: number; sd: number }> = {};
    for (const k of scoreNames(rs)) {
      const xs = rs.map((r) => r.final_eval_scores?.[k]).filter((x): x is number => x !== undefined);
      scores[k] = { mean: mean(xs), sd: sd(xs) };
    }
    const solvedAt = judged
      .filter((r) => r.solved && typeof r.steps_to_solve === "number")
      .map((r) => r.steps_to_solve!);
    return {
      cell,
      runs: rs.length,
      lossMean: mean(losses),
      lossSd: sd(losses),
      ...(acc.length ? { accuracyMean: mean(acc), accuracySd: sd(acc) } : {}),
      scores,
      ...(judged.length ? { solved: judged.filter((r) => r.solved).length } : {}),
      medianStepsToSolve: solvedAt.length ? median(solvedAt) : null,
      msPerStep: mean(rs.map((r) => r.ms_per_step)),
      params: rs[0]!.params,
    };
  });
}

/** A loss: three significant digits in exponent form (`1.75e-1`), the same for every magnitude. */
export const fmtLoss = (x: number): string => (Number.isFinite(x) ? x.toExponential(2) : String(x));
/** A spread: two significant digits (`1.0e-3`). */
export const fmtSpread = (x: number): string => (Number.isFinite(x) ? x.toExponential(1) : String(x));
/** A fraction as a percentage with one decimal (`97.3%`). */
export const fmtPercent = (x: number): string => (Number.isFinite(x) ? `${(100 * x).toFixed(1)}%` : "-");

/**
 * The scores a task adds to an eval metric beside the accuracy (selective copying's `recall_accuracy`,
 * what its criterion judges), as "recall accuracy 98.9%", each after `sep`.
 */
export function fmtScores(m: Readonly<Record<string, unknown>> | undefined, sep: string): string {
  if (!m) return "";
  return Object.entries(m)
    .filter(([k, v]) => k.endsWith("_accuracy") && typeof v === "number")
    .map(
      ([k, v]) =>
        `${sep}${k.slice(0, -"_accuracy".length).replace(/_/g, " ")} accuracy ${fmtPercent(v as number)}`,
    )
    .join("");
}
export const fmtMs = (x: number): string => x.toFixed(2);

/** Mean ± sd over seeds, or the value alone for one seed. */
const spread = (runs: number, m: string, s: string) => (runs > 1 ? `${m} ± ${s}` : m);

export interface Table {
  readonly header: readonly string[];
  readonly rows: readonly (readonly string[])[];
}

/** The task scores any run has, in the order they first appear. */
function scoreNames(runs: readonly RunSummary[]): string[] {
  return [...new Set(runs.flatMap((r) => Object.keys(r.final_eval_scores ?? {})))];
}

/** A score's column header: `recall_accuracy` -> "recall accuracy". */
const scoreHeader = (k: string) => k.replace(/_/g, " ");

/** Which columns the runs call for. */
function columns(runs: readonly RunSummary[]) {
  return {
    accuracy: runs.some((r) => r.final_eval_accuracy !== undefined),
    scores: scoreNames(runs),
    criterion: runs.some((r) => r.solved !== undefined),
  };
}

/**
 * The scores of the last eval metric that a task adds (`*_accuracy` but the accuracy itself), for
 * RunSummary.final_eval_scores; undefined when there are none.
 */
export function finalScores(
  metrics: readonly Readonly<Record<string, unknown>>[],
): Record<string, number> | undefined {
  const last = [...metrics].reverse().find((m) => m.split === "eval");
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(last ?? {}))
    if (k.endsWith("_accuracy") && typeof v === "number") out[k] = v;
  return Object.keys(out).length ? out : undefined;
}

/**
 * The table per cell: final eval loss (mean ± sample sd over seeds), accuracy for class targets, solved
 * k/n and median steps to solve where there is a criterion, mean ms/step, parameters.
 */
export function cellTable(runs: readonly RunSummary[]): Table {
  const c = columns(runs);
  const header = [
    "cell",
    "final eval loss",
    ...(c.accuracy ? ["accuracy"] : []),
    ...c.scores.map(scoreHeader),
    ...(c.criterion ? ["solved", "steps to solve"] : []),
    "ms/step",
    "params",
  ];
  const rows = summarise(runs).map((s) => [
    s.cell,
    spread(s.runs, fmtLoss(s.lossMean), fmtSpread(s.lossSd)),
    ...(c.accuracy ? [spread(s.runs, fmtPercent(s.accuracyMean!), fmtPercent(s.accuracySd!))] : []),
    ...c.scores.map((k) =>
      s.scores[k] ? spread(s.runs, fmtPercent(s.scores[k].mean), fmtPercent(s.scores[k].sd)) : "-",
    ),
    ...(c.criterion
      ? [`${s.solved ?? 0}/${s.runs}`, s.medianStepsToSolve === null ? "-" : String(s.medianStepsToSolve)]
      : []),
    fmtMs(s.msPerStep),
    String(s.params),
  ]);
  return { header, rows };
}

/** One row per (cell, seed): its final numbers, where it met the criterion, ms/step with min-max. */
export function runTable(runs: readonly RunSummary[]): Table {
  const c = columns(runs);
  const header = [
    "cell",
    "seed",
    "final eval loss",
    ...(c.accuracy ? ["accuracy"] : []),
    ...c.scores.map(scoreHeader),
    ...(c.criterion ? ["solved at step"] : []),
    "ms/step",
    "min-max ms/step",
  ];
  const rows = runs.map((r) => [
    r.cell,
    String(r.seed),
    fmtLoss(r.final_eval_loss),
    ...(c.accuracy ? [r.final_eval_accuracy === undefined ? "-" : fmtPercent(r.final_eval_accuracy)] : []),
    ...c.scores.map((k) => {
      const x = r.final_eval_scores?.[k];
      return x === undefined ? "-" : fmtPercent(x);
    }),
    ...(c.criterion
      ? [r.solved && typeof r.steps_to_solve === "number" ? String(r.steps_to_solve) : "-"]
      : []),
    fmtMs(r.ms_per_step),
    r.ms_per_step_min !== undefined && r.ms_per_step_max !== undefined
      ? `${fmtMs(r.ms_per_step_min)}–${fmtMs(r.ms_per_step_max)}`
      : "-",
  ]);
  return { header, rows };
}

/** A cell's results in a few words, for a legend: `1.75e-1 ± 1.0e-3, 97.3%, solved 2/2`. */
export function legendText(s: CellSummary): string {
  const parts = [spread(s.runs, fmtLoss(s.lossMean), fmtSpread(s.lossSd))];
  if (s.accuracyMean !== undefined) parts.push(fmtPercent(s.accuracyMean));
  if (s.solved !== undefined) parts.push(`solved ${s.solved}/${s.runs}`);
  return parts.join(", ");
}

/** Columns padded to their widths: the first left-aligned, the others right-aligned. */
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const all = [header, ...rows];
  const w = header.map((_, j) => all.reduce((m, r) => Math.max(m, [...r[j]!].length), 0));
  const line = (r: readonly string[]) =>
    r.map((v, j) => (j === 0 ? v.padEnd(w[j]!) : v.padStart(w[j]!))).join("  ");
  return [line(header), ...rows.map(line)].join("\n") + "\n";
}
