import type { InitSpec } from "../artifact/init.js";
import type { FloatArray } from "./tensor.js";

/** A small seeded generator (mulberry32) so that initialisation is reproducible from a seed. */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  /** The whole state, to save in a checkpoint and restore (training resumes bit-identically). */
  get state(): number {
    return this.s;
  }
  set state(s: number) {
    this.s = s >>> 0;
  }
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  normal(): number {
    const u = 1 - this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next());
  }
}

/** Fills a parameter of shape `shape` (rows first) as its initialiser says. */
export function initialise(spec: InitSpec, shape: readonly number[], out: FloatArray, rng: Rng): void {
  const rows = shape[0] ?? 1;
  const cols = shape.length > 1 ? shape[1]! : 1;
  switch (spec.kind) {
    case "const":
      out.fill(spec.value);
      return;
    case "uniform": {
      const a = 1 / Math.sqrt(rows);
      const lo = spec.lo ?? -a;
      const hi = spec.hi ?? a;
      for (let i = 0; i < out.length; i++) out[i] = lo + (hi - lo) * rng.next();
      return;
    }
    case "normal":
      for (let i = 0; i < out.length; i++) out[i] = spec.mean + spec.std * rng.normal();
      return;
    case "xavier": {
      const fanIn = shape.length > 1 ? cols : rows;
      const a = spec.gain * Math.sqrt(6 / (fanIn + rows));
      for (let i = 0; i < out.length; i++) out[i] = -a + 2 * a * rng.next();
      return;
    }
    case "orthogonal":
      orthogonal(rows, cols, spec.gain, out, rng);
      return;
  }
}

/** Rows (or columns, whichever are fewer) orthonormal, by Gram-Schmidt on a Gaussian matrix. */
function orthogonal(rows: number, cols: number, gain: number, out: FloatArray, rng: Rng): void {
  const transpose = rows > cols;
  const [m, n] = transpose ? [cols, rows] : [rows, cols];
  const q = Array.from({ length: m }, () => Float64Array.from({ length: n }, () => rng.normal()));
  for (let i = 0; i < m; i++) {
    const v = q[i]!;
    for (let k = 0; k < i; k++) {
      const u = q[k]!;
      let dot = 0;
      for (let j = 0; j < n; j++) dot += v[j]! * u[j]!;
      for (let j = 0; j < n; j++) v[j]! -= dot * u[j]!;
    }
    let norm = 0;
    for (let j = 0; j < n; j++) norm += v[j]! * v[j]!;
    norm = Math.sqrt(norm) || 1;
    for (let j = 0; j < n; j++) v[j]! /= norm;
  }
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < cols; c++) out[r * cols + c] = gain * (transpose ? q[c]![r]! : q[r]![c]!);
}
