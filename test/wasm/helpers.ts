import { buildKernelModule } from "../../kernels/library.js";
import { scratchBytes, type GemmTiling } from "../../kernels/gemm.js";
import { relaxedSimd } from "../../runtime/wasm/features.js";

export type Kernel = (...args: number[]) => number | undefined;

/** Instantiates the kernel module over a fresh shared memory of `pages` 64 KiB pages. */
export function instantiate(pages: number, tiling?: GemmTiling) {
  if (tiling?.fma) relaxedSimd(); // switches relaxed SIMD on where it is behind a flag (Node 20)
  const { bytes } = buildKernelModule(tiling);
  if (!WebAssembly.validate(bytes)) throw new Error("kernel module does not validate");
  const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
  const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } });
  const k = (name: string): Kernel => instance.exports[name] as Kernel;
  return { memory, f32: new Float32Array(memory.buffer), k, bytes };
}

/** A deterministic generator (mulberry32) so failures reproduce. */
export function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// GEMM cases: operands laid out in memory with padded rows, and an f64 reference.
export type Form = "nt" | "nn" | "tn";

/** Element (i, j) of each operand as the form reads it, and the output's [rows, cols]. */
export function formShapes(form: Form, R: number, M: number, K: number) {
  return {
    nt: { out: [R, M], left: [R, K], right: [M, K], inner: K },
    nn: { out: [R, K], left: [R, M], right: [M, K], inner: M },
    tn: { out: [M, K], left: [R, M], right: [R, K], inner: R },
  }[form];
}

export function reference(form: Form, L: Float32Array, ldl: number, Rt: Float32Array, ldr: number, R: number, M: number, K: number) {
  const s = formShapes(form, R, M, K);
  const [rows, cols] = s.out as [number, number];
  const val = new Float64Array(rows * cols);
  const mag = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++)
    for (let j = 0; j < cols; j++) {
      let v = 0;
      let a = 0;
      for (let k = 0; k < s.inner; k++) {
        const l = form === "nt" || form === "nn" ? L[i * ldl + k]! : L[k * ldl + i]!;
        const r = form === "nt" ? Rt[j * ldr + k]! : Rt[k * ldr + j]!;
        v += l * r;
        a += Math.abs(l * r);
      }
      val[i * cols + j] = v;
      mag[i * cols + j] = a;
    }
  return { val, mag, rows, cols };
} // prettier-ignore

export interface Case {
  form: Form;
  R: number;
  M: number;
  K: number;
  pad: number;
  acc: boolean;
}

/** Lays out one case in memory (16-byte aligned regions, row strides width + pad) and fills it. */
export function layout(f32: Float32Array, c: Case, tiling: GemmTiling, seed: number) {
  const s = formShapes(c.form, c.R, c.M, c.K);
  const ld = (w: number): number => w + c.pad;
  let at = 1024; // element offset; the first 4 KiB stay free for pools' control blocks
  const region = (rows: number, width: number): number => {
    const start = at;
    at += Math.ceil((rows * ld(width)) / 4) * 4 + 4;
    return start;
  };
  const [outRows, outCols] = s.out as [number, number];
  const L = region(s.left[0]!, s.left[1]!);
  const Rt = region(s.right[0]!, s.right[1]!);
  const C = region(outRows, outCols);
  const scratch = at;
  at += scratchBytes(tiling, c.form, c.R, c.M, c.K) / 4 + 4;
  if (at > f32.length) throw new Error("test memory too small");
  const rand = rng(seed);
  for (let i = 1024; i < scratch; i++) f32[i] = rand() * 2 - 1;
  const args = [C * 4, ld(outCols), L * 4, ld(s.left[1]!), Rt * 4, ld(s.right[1]!), c.R, c.M, c.K, c.acc ? 1 : 0, scratch * 4]; // prettier-ignore
  return { args, L, Rt, C, outRows, outCols, ldl: ld(s.left[1]!), ldr: ld(s.right[1]!), ldc: ld(outCols) };
}

/** Max over outputs of |got - ref| / (sum |a||b| + 1e-30), and whether the padding changed. */
export function check(f32: Float32Array, c: Case, lay: ReturnType<typeof layout>, before: Float32Array) {
  const view = (off: number, n: number) => f32.subarray(off, off + n);
  const ref = reference(c.form, view(lay.L, 1 << 24), lay.ldl, view(lay.Rt, 1 << 24), lay.ldr, c.R, c.M, c.K);
  let worst = 0;
  let padChanged = false;
  for (let i = 0; i < lay.outRows; i++)
    for (let j = 0; j < lay.ldc; j++) {
      const at = lay.C + i * lay.ldc + j;
      if (j >= lay.outCols) {
        if (!Object.is(f32[at], before[at])) padChanged = true;
        continue;
      }
      const want = ref.val[i * lay.outCols + j]! + (c.acc ? before[at]! : 0);
      const scale = ref.mag[i * lay.outCols + j]! + (c.acc ? Math.abs(before[at]!) : 0) + 1e-30;
      worst = Math.max(worst, Math.abs(f32[at]! - want) / scale);
    }
  return { worst, padChanged };
}
