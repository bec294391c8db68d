// Vectorised f32 exp, log, tanh and sigmoid as code-emitting helpers (for the fused kernels, which inline
// them) and as array functions (dst, src, n). Each helper reads a v128 local and returns the v128 local
// that holds the result. Range reduction to a small interval plus a short series, with the special values
// (±0, denormals, ±Inf, NaN) falling out of the arithmetic or selected at the end. Max ulp errors against
// Math.* (f64, then rounded to f32) over the whole float range are asserted in test/wasm/math.test.ts.
import { Func, T, type ModuleWriter } from "./writer.js";

const splat = (f: Func, x: number): Func => f.v128([x, x, x, x]);
const isplat = (f: Func, x: number): Func => f.v128([x, x, x, x], true);

/** Horner: pushes c[0] + z*(c[1] + z*(c[2] + ...)) for a v128 local z. */
function poly(f: Func, z: number, c: readonly number[]): void {
  splat(f, c[c.length - 1]!);
  for (let i = c.length - 2; i >= 0; i--) {
    f.get(z).op("f32x4.mul");
    splat(f, c[i]!).op("f32x4.add");
  }
}

const FACT = [1, 1, 1 / 2, 1 / 6, 1 / 24, 1 / 120, 1 / 720, 1 / 5040];
const LN2_HI = 0.693359375; // 9 significant bits: n * LN2_HI is exact for |n| < 2^15
const LN2_LO = Math.LN2 - LN2_HI;

// 1.5 * 2^23: adding it to |v| < 2^22 rounds v to an integer (ties to even, as f32x4.nearest) in the
// low mantissa bits, which an i32x4.sub of its bits then reads out: 3 instructions for nearest and
// trunc_sat, which V8 lowers to a dozen on x64 (their NaN and overflow cases cannot arise here).
const ROUNDER = 12582912;
const ROUNDER_BITS = 0x4b400000;

/**
 * e^x. Overflow to +Inf and underflow through the denormals come from scaling by 2^n in two halves. The
 * clamp uses pmax/pmin (one instruction each on x64; f32x4.max/min are six): both keep a NaN x.
 */
export function emitExp(f: Func, x: number): number {
  const [xc, nr, n, r, ni, out] = [0, 0, 0, 0, 0, 0].map(() => f.local(T.v128));
  f.get(x);
  splat(f, -104).op("f32x4.pmax");
  splat(f, 89).op("f32x4.pmin").set(xc!);
  f.get(xc!);
  splat(f, Math.LOG2E).op("f32x4.mul");
  splat(f, ROUNDER).op("f32x4.add").set(nr!);
  f.get(nr!);
  splat(f, ROUNDER).op("f32x4.sub").set(n!);
  f.get(xc!).get(n!);
  splat(f, LN2_HI).op("f32x4.mul", "f32x4.sub").get(n!);
  splat(f, LN2_LO).op("f32x4.mul", "f32x4.sub").set(r!);
  poly(f, r!, FACT);
  f.get(nr!);
  isplat(f, ROUNDER_BITS).op("i32x4.sub").set(ni!);
  // 2^n = 2^(n>>1) * 2^(n - (n>>1)); both halves are normal for n in [-150, 128].
  f.get(ni!).i32(1).op("i32x4.shr_s");
  isplat(f, 127).op("i32x4.add").i32(23).op("i32x4.shl", "f32x4.mul");
  f.get(ni!).get(ni!).i32(1).op("i32x4.shr_s", "i32x4.sub");
  isplat(f, 127).op("i32x4.add").i32(23).op("i32x4.shl", "f32x4.mul").set(out!);
  return out!;
}

/** ln x: x = m 2^e with m in [sqrt(1/2), sqrt(2)), ln m = 2 atanh(s), s = (m-1)/(m+1). */
export function emitLog(f: Func, x: number): number {
  const [small, xs, e, m, big, fr, s, z, hfsq, out] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0].map(() =>
    f.local(T.v128),
  );
  f.get(x);
  splat(f, 1.1754943508222875e-38).op("f32x4.lt").set(small!); // denormal (or <= 0, handled at the end)
  f.get(x);
  splat(f, 8388608).op("f32x4.mul").get(x).get(small!).op("v128.bitselect").set(xs!);
  f.get(xs!).i32(23).op("i32x4.shr_u");
  isplat(f, 127).op("i32x4.sub").get(small!);
  isplat(f, 23).op("v128.and", "i32x4.sub").set(e!);
  f.get(xs!);
  isplat(f, 0x007fffff).op("v128.and");
  isplat(f, 0x3f800000).op("v128.or").set(m!);
  f.get(m!);
  splat(f, Math.SQRT2).op("f32x4.gt").set(big!);
  f.get(m!);
  splat(f, 0.5).op("f32x4.mul").get(m!).get(big!).op("v128.bitselect").set(m!);
  f.get(e!).get(big!).op("i32x4.sub", "f32x4.convert_i32x4_s").set(e!);
  f.get(m!);
  splat(f, 1).op("f32x4.sub").set(fr!);
  f.get(fr!).get(fr!);
  splat(f, 2).op("f32x4.add", "f32x4.div").set(s!);
  f.get(s!).get(s!).op("f32x4.mul").set(z!);
  f.get(fr!).get(fr!).op("f32x4.mul");
  splat(f, 0.5).op("f32x4.mul").set(hfsq!);
  // e*LN2_HI + (f - (hfsq - (s*(hfsq + R) + e*LN2_LO))), R = z*(2/3 + z*(2/5 + ...))
  f.get(e!);
  splat(f, LN2_HI).op("f32x4.mul").get(fr!).get(hfsq!).get(s!).get(hfsq!).get(z!);
  poly(f, z!, [2 / 3, 2 / 5, 2 / 7, 2 / 9, 2 / 11]);
  f.op("f32x4.mul", "f32x4.add", "f32x4.mul").get(e!);
  splat(f, LN2_LO).op("f32x4.mul", "f32x4.add", "f32x4.sub", "f32x4.sub", "f32x4.add").set(out!);
  // Specials: ln ±0 = -Inf, ln(<0) = NaN, ln +Inf = +Inf, NaN stays NaN.
  const sel = (value: number, cond: () => void): void => {
    splat(f, value).get(out!);
    cond();
    f.op("v128.bitselect").set(out!);
  };
  sel(-Infinity, () => f.get(x).v128([0, 0, 0, 0]).op("f32x4.eq"));
  sel(Infinity, () => splat(f.get(x), Infinity).op("f32x4.eq"));
  sel(NaN, () => f.get(x).v128([0, 0, 0, 0]).op("f32x4.lt"));
  f.get(x).get(out!).get(x).get(x).op("f32x4.ne", "v128.bitselect").set(out!);
  return out!;
}

// tanh x = x + x^3 c3 + ... (Taylor, |x| < 0.55) — terms fall by ~8x each there, 9 are below 1e-8.
const TANH = [-1 / 3, 2 / 15, -17 / 315, 62 / 2835, -1382 / 155925, 21844 / 6081075, -929569 / 638512875];
const TANH_TAIL = [6404582 / 10854718875, -443861162 / 1856156927625];

/** tanh x: the series near 0, (1 - e^-2|x|) / (1 + e^-2|x|) beyond; the sign of x (and of -0) copied. */
export function emitTanh(f: Func, x: number): number {
  const [a, z, small, yPoly, t, out] = [0, 0, 0, 0, 0, 0].map(() => f.local(T.v128));
  f.get(x).op("f32x4.abs").set(a!);
  f.get(a!).get(a!).op("f32x4.mul").set(z!);
  f.get(a!);
  splat(f, 0.55).op("f32x4.lt").set(small!);
  f.get(a!).get(a!).get(z!);
  poly(f, z!, [...TANH, ...TANH_TAIL]);
  f.op("f32x4.mul", "f32x4.mul", "f32x4.add").set(yPoly!);
  f.get(a!);
  splat(f, -2).op("f32x4.mul").set(t!);
  const e = emitExp(f, t!);
  splat(f, 1).get(e).op("f32x4.sub");
  splat(f, 1).get(e).op("f32x4.add", "f32x4.div");
  f.set(out!).get(yPoly!).get(out!).get(small!).op("v128.bitselect");
  f.get(x);
  isplat(f, 0x7fffffff).op("v128.bitselect").set(out!);
  return out!;
}

/** sigmoid x = 1 / (1 + e^-x) for x >= 0, e^x / (1 + e^x) below, so the denormal tail is kept. */
export function emitSigmoid(f: Func, x: number): number {
  const [t, out] = [0, 0].map(() => f.local(T.v128));
  f.get(x).op("f32x4.abs", "f32x4.neg").set(t!);
  const e = emitExp(f, t!);
  splat(f, 1).get(e).get(x).v128([0, 0, 0, 0]).op("f32x4.ge", "v128.bitselect");
  splat(f, 1).get(e).op("f32x4.add", "f32x4.div").set(out!);
  return out!;
}

export const MATH = { vexp: emitExp, vlog: emitLog, vtanh: emitTanh, vsigmoid: emitSigmoid } as const;

/** (dst, src, n): dst[i] = fn(src[i]); four lanes at a time, then the remainder one lane at a time. */
function arrayFn(emit: (f: Func, x: number) => number): Func {
  const f = new Func([T.i32, T.i32, T.i32]);
  const [dst, src, n] = [0, 1, 2];
  const [i, x] = [f.local(T.i32), f.local(T.v128)];
  const loop = (width: 4 | 1): void => {
    f.block().loop();
    f.get(i).i32(width).op("i32.add").get(n).op("i32.gt_s").brIf(1);
    f.get(src).get(i).i32(2).op("i32.shl", "i32.add");
    if (width === 4) f.mem("v128.load");
    else f.mem("v128.load32_splat");
    f.set(x);
    const y = emit(f, x);
    f.get(dst).get(i).i32(2).op("i32.shl", "i32.add").get(y);
    if (width === 4) f.mem("v128.store");
    else f.lane("f32x4.extract_lane", 0).mem("f32.store");
    f.get(i).i32(width).op("i32.add").set(i).br(0).end().end();
  };
  loop(4);
  loop(1);
  return f;
}

export function addMath(m: ModuleWriter): void {
  for (const [name, emit] of Object.entries(MATH)) m.add(arrayFn(emit), name);
}
