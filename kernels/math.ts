// Vectorised f32 exp, log, tanh and sigmoid as code-emitting helpers (for the fused kernels, which inline
// them) and as array functions (dst, src, n). Each helper reads a v128 local and returns the v128 local
// that holds the result. Range reduction to a small interval plus a short polynomial, with the special values
// (±0, denormals, ±Inf, NaN) falling out of the arithmetic or selected at the end. With `fma` (where the
// engine has relaxed SIMD) each multiply-add is one f32x4.relaxed_madd. Max ulp errors against Math.* (f64,
// then rounded to f32) over the whole float range are asserted in test/wasm/math.test.ts, with and without.
import { Func, T, type ModuleWriter } from "./writer.js";

/** How the math is emitted: `fma`, multiply-adds as relaxed SIMD's fused f32x4.relaxed_madd. */
export interface MathOptions {
  readonly fma?: boolean;
}

const splat = (f: Func, x: number): Func => f.v128([x, x, x, x]);
const isplat = (f: Func, x: number): Func => f.v128([x, x, x, x], true);

/** Pushes a * b + c for the three values on the stack (fused with `fma`). */
function madd(f: Func, o: MathOptions): void {
  if (o.fma) f.op("f32x4.relaxed_madd");
  else {
    // a b c -> a * b + c: the product first, so park c.
    const c = f.local(T.v128);
    f.set(c).op("f32x4.mul").get(c).op("f32x4.add");
  }
}

/** Horner: pushes c[0] + z*(c[1] + z*(c[2] + ...)) for a v128 local z. */
function poly(f: Func, z: number, c: readonly number[], o: MathOptions = {}): void {
  splat(f, c[c.length - 1]!);
  for (let i = c.length - 2; i >= 0; i--) {
    if (o.fma) {
      f.get(z);
      splat(f, c[i]!).op("f32x4.relaxed_madd");
    } else {
      f.get(z).op("f32x4.mul");
      splat(f, c[i]!).op("f32x4.add");
    }
  }
}

// e^r = 1 + r + r^2 H(r) on |r| <= ln2 / 2, H fitted for relative error (near minimax, degree 4):
// at most 1 ulp for exp after rounding, one term fewer than the Taylor series needs.
const EXP_POLY = [1, 1, 0.5, 0.16666534543037415, 0.04166692867875099, 0.008367346599698067, 0.0013896235032007098]; // prettier-ignore
// expm1(r) = r + r^2 G(r) on the same interval (G fitted likewise).
const EXPM1_G = [0.5, 0.16666558384895325, 0.041665710508823395, 0.008365153335034847, 0.001397997490130365]; // prettier-ignore
const LN2_HI = 0.693359375; // 9 significant bits: n * LN2_HI is exact for |n| < 2^15
const LN2_LO = Math.LN2 - LN2_HI;

// 1.5 * 2^23: adding it to |v| < 2^22 rounds v to an integer (ties to even, as f32x4.nearest) in the
// low mantissa bits, which an i32x4.sub of its bits then reads out: 3 instructions for nearest and
// trunc_sat, which V8 lowers to a dozen on x64 (their NaN and overflow cases cannot arise here).
const ROUNDER = 12582912;
const ROUNDER_BITS = 0x4b400000;

/**
 * Range reduction of a local x (already clamped to |x| < 2^21 ln2): x = n ln2 + r, |r| <= ln2/2 (a bit
 * more where a multiply-add rounds n differently). Returns locals [r, ni]: r as floats, n as i32 lanes.
 */
function reduce(f: Func, x: number, o: MathOptions): [number, number] {
  const [nr, n, r, ni] = [0, 0, 0, 0].map(() => f.local(T.v128));
  f.get(x);
  splat(f, Math.LOG2E);
  splat(f, ROUNDER);
  madd(f, o);
  f.set(nr!);
  f.get(nr!);
  splat(f, ROUNDER).op("f32x4.sub").set(n!);
  if (o.fma) {
    // r = x - n ln2_hi - n ln2_lo, each a fused negative multiply-add
    f.get(n!);
    splat(f, LN2_HI).get(x).op("f32x4.relaxed_nmadd");
    f.set(r!).get(n!);
    splat(f, LN2_LO).get(r!).op("f32x4.relaxed_nmadd").set(r!);
  } else {
    f.get(x).get(n!);
    splat(f, LN2_HI).op("f32x4.mul", "f32x4.sub").get(n!);
    splat(f, LN2_LO).op("f32x4.mul", "f32x4.sub").set(r!);
  }
  f.get(nr!);
  isplat(f, ROUNDER_BITS).op("i32x4.sub").set(ni!);
  return [r!, ni!];
}

/** Pushes 2^(ni + bias - 127) as floats, for i32 lanes ni with ni + bias in [1, 254]. */
function pow2(f: Func, ni: number, bias: number): void {
  f.get(ni);
  isplat(f, bias).op("i32x4.add").i32(23).op("i32x4.shl");
}

/**
 * e^x. Overflow to +Inf and underflow through the denormals come from scaling by 2^n in two halves. The
 * clamp uses pmax/pmin (one instruction each on x64; f32x4.max/min are six): both keep a NaN x.
 */
export function emitExp(f: Func, x: number, o: MathOptions = {}): number {
  const [xc, out] = [0, 0].map(() => f.local(T.v128));
  f.get(x);
  splat(f, -104).op("f32x4.pmax");
  splat(f, 89).op("f32x4.pmin").set(xc!);
  const [r, ni] = reduce(f, xc!, o);
  poly(f, r, EXP_POLY, o);
  // 2^n = 2^(n>>1) * 2^(n - (n>>1)); both halves are normal for n in [-150, 128].
  f.get(ni).i32(1).op("i32x4.shr_s");
  isplat(f, 127).op("i32x4.add").i32(23).op("i32x4.shl", "f32x4.mul");
  f.get(ni).get(ni).i32(1).op("i32x4.shr_s", "i32x4.sub");
  isplat(f, 127).op("i32x4.add").i32(23).op("i32x4.shl", "f32x4.mul").set(out!);
  return out!;
}

/** ln x: x = m 2^e with m in [sqrt(1/2), sqrt(2)), ln m = 2 atanh(s), s = (m-1)/(m+1). */
export function emitLog(f: Func, x: number, o: MathOptions = {}): number {
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
  poly(f, z!, [2 / 3, 2 / 5, 2 / 7, 2 / 9, 2 / 11], o);
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

/**
 * tanh x = (1 - e) / (1 + e) with e = e^-2|x| = s (1 + q), s = 2^n, q = expm1(r): numerator and denominator
 * are each one multiply-add of s q onto (1 - s) and (1 + s), exact but for one rounding each, so there is
 * no cancellation near 0 and no series to add there. -2|x| is clamped at -20, past which tanh is 1 in f32
 * (so 2^n is always normal); the sign of x (and of -0) is copied.
 */
export function emitTanh(f: Func, x: number, o: MathOptions = {}): number {
  const [y, q, s, out] = [0, 0, 0, 0].map(() => f.local(T.v128));
  f.get(x).op("f32x4.abs");
  splat(f, -2).op("f32x4.mul");
  splat(f, -20).op("f32x4.pmax").set(y!);
  const [r, ni] = reduce(f, y!, o);
  // q = r + r^2 G(r)
  f.get(r).get(r).op("f32x4.mul");
  poly(f, r, EXPM1_G, o);
  f.get(r);
  madd(f, o);
  f.set(q!);
  pow2(f, ni, 127);
  f.set(s!);
  if (o.fma) {
    f.get(s!).get(q!);
    splat(f, 1).get(s!).op("f32x4.sub", "f32x4.relaxed_nmadd");
    f.get(s!).get(q!);
    splat(f, 1).get(s!).op("f32x4.add", "f32x4.relaxed_madd", "f32x4.div");
  } else {
    const sq = f.local(T.v128);
    f.get(s!).get(q!).op("f32x4.mul").set(sq);
    splat(f, 1).get(s!).op("f32x4.sub").get(sq).op("f32x4.sub");
    splat(f, 1).get(s!).op("f32x4.add").get(sq).op("f32x4.add", "f32x4.div");
  }
  f.get(x);
  isplat(f, 0x7fffffff).op("v128.bitselect").set(out!);
  return out!;
}

/**
 * sigmoid x = 1 / (1 + e) for x >= 0, e / (1 + e) below, e = e^-|x|, so the denormal tail is kept: e is
 * p 2^(n+64) (normal for n >= -150) times 2^-64, exact but for the one rounding into the denormals.
 */
export function emitSigmoid(f: Func, x: number, o: MathOptions = {}): number {
  const [y, e, out] = [0, 0, 0].map(() => f.local(T.v128));
  // -|x|: the sign bit set (NaN stays NaN), clamped where e^y is below half the least denormal.
  f.get(x);
  isplat(f, -0x80000000).op("v128.or");
  splat(f, -104).op("f32x4.pmax").set(y!);
  const [r, ni] = reduce(f, y!, o);
  poly(f, r, EXP_POLY, o);
  pow2(f, ni, 127 + 64);
  f.op("f32x4.mul");
  splat(f, 2 ** -64)
    .op("f32x4.mul")
    .set(e!);
  splat(f, 1).get(e!).get(x).v128([0, 0, 0, 0]).op("f32x4.ge", "v128.bitselect");
  splat(f, 1).get(e!).op("f32x4.add", "f32x4.div").set(out!);
  return out!;
}

export const MATH = { vexp: emitExp, vlog: emitLog, vtanh: emitTanh, vsigmoid: emitSigmoid } as const;

/** (dst, src, n): dst[i] = fn(src[i]); four lanes at a time, then the remainder one lane at a time. */
function arrayFn(emit: (f: Func, x: number, o: MathOptions) => number, o: MathOptions): Func {
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
    const y = emit(f, x, o);
    f.get(dst).get(i).i32(2).op("i32.shl", "i32.add").get(y);
    if (width === 4) f.mem("v128.store");
    else f.lane("f32x4.extract_lane", 0).mem("f32.store");
    f.get(i).i32(width).op("i32.add").set(i).br(0).end().end();
  };
  loop(4);
  loop(1);
  return f;
}

export function addMath(m: ModuleWriter, o: MathOptions = {}): void {
  for (const [name, emit] of Object.entries(MATH)) m.add(arrayFn(emit, o), name);
}
