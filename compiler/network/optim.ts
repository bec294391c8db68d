// The optimisers' updates as torch.optim defines them (SGD with momentum, Adam, AdamW), with PyTorch's
// weight decay, and global gradient-norm clipping as torch.nn.utils.clip_grad_norm_: each optimiser
// defined once with its JS and WGSL kernels.
//
// JS (arithmetic in f64; parameters and moments stored in the parameters' precision, as PyTorch does):
//   update(w, g, m, v, n, lr, hp)   one update of n values; hp = [beta1, beta2, eps, weight decay,
//                                   momentum, update count from 1]; m, v the moments (`buf` is m)
//   sumsq(g, n)                     the sum of squares of n values (the gradient norm is its root)
//   scale(g, n, coef)               g *= coef (clipping)
// WGSL, over every parameter of a network at once (flat buffers w, g, m, v): `sumsq` (a workgroup of 256
// per 4096 values: partial sums into `part`) and `total` (their sum into stats[1]: the squared gradient
// norm), then `update` (an invocation per value; the gradient scaled by the clipping coefficient, which it
// computes from stats[1] and u.clip, 0 for none).
import type { OptimName, StageKernels } from "../../artifact/network.js";
import { Writer } from "../codegen/writer.js";

interface OptimDef {
  /** Statements for value i; `gi` is its gradient. */
  readonly js: (w: Writer) => void;
  readonly wgsl: (w: Writer) => void;
}

const adam = (decoupled: boolean): OptimDef => ({
  js: (w) => {
    // AdamW decays the weight itself, before the step; Adam adds the decay to the gradient.
    if (decoupled) w.line("w[i] = w[i] * (1 - lr * wd);").line("const gi = g[i];");
    else w.line("const gi = g[i] + wd * w[i];");
    w.line("m[i] = m[i] + (gi - m[i]) * (1 - b1);");
    w.line("v[i] = v[i] * b2 + (1 - b2) * gi * gi;");
    w.line("w[i] = w[i] - (stepSize * m[i]) / (Math.sqrt(v[i]) / sbc2 + eps);");
  },
  wgsl: (w) => {
    if (decoupled) w.line("w[i] = w[i] * (1.0 - u.lr * u.wd);").line("let gi = g[i] * coef;");
    else w.line("let gi = g[i] * coef + u.wd * w[i];");
    w.line("m[i] = m[i] + (gi - m[i]) * (1.0 - u.b1);");
    w.line("v[i] = v[i] * u.b2 + (1.0 - u.b2) * gi * gi;");
    w.line("w[i] = w[i] - (u.lr / u.bc1 * m[i]) / (sqrt(v[i]) / sqrt(u.bc2) + u.eps);");
  },
});

const sgd = (momentum: boolean): OptimDef => ({
  js: (w) => {
    w.line("let d = g[i] + wd * w[i];");
    if (momentum) w.line("d = m[i] = count === 1 ? d : mom * m[i] + d;");
    w.line("w[i] = w[i] - lr * d;");
  },
  wgsl: (w) => {
    w.line("var d = g[i] * coef + u.wd * w[i];");
    if (momentum) w.line("d = select(u.mom * m[i] + d, d, u.first == 1u);").line("m[i] = d;");
    w.line("w[i] = w[i] - u.lr * d;");
  },
});

export const OPTIMIZERS: Readonly<Record<OptimName, OptimDef>> = {
  sgd: sgd(false),
  momentum: sgd(true),
  adam: adam(false),
  adamw: adam(true),
};

export function emitOptimJs(kind: OptimName): string {
  const w = new Writer();
  w.open("function update(w, g, m, v, n, lr, hp) {");
  w.line("const b1 = hp[0];").line("const b2 = hp[1];").line("const eps = hp[2];").line("const wd = hp[3];");
  w.line("const mom = hp[4];").line("const count = hp[5];");
  w.line("const stepSize = lr / (1 - b1 ** count);").line("const sbc2 = Math.sqrt(1 - b2 ** count);");
  w.open("for (let i = 0; i < n; i++) {");
  OPTIMIZERS[kind].js(w);
  w.close();
  w.close();
  w.open("function sumsq(g, n) {");
  w.line("let s = 0;");
  w.line("for (let i = 0; i < n; i++) s += g[i] * g[i];");
  w.line("return s;");
  w.close();
  w.open("function scale(g, n, coef) {");
  w.line("for (let i = 0; i < n; i++) g[i] = g[i] * coef;");
  w.close();
  return w.toString();
}

export function emitOptimWgsl(kind: OptimName): string {
  const w = new Writer();
  w.line("struct U {");
  w.line("  lr: f32, b1: f32, b2: f32, eps: f32, wd: f32, mom: f32, bc1: f32, bc2: f32,");
  w.line("  clip: f32, n: u32, first: u32, pad: u32,");
  w.line("}");
  w.line("@group(0) @binding(0) var<uniform> u: U;");
  w.line("@group(0) @binding(1) var<storage, read_write> w: array<f32>;");
  w.line("@group(0) @binding(2) var<storage, read> g: array<f32>;");
  w.line("@group(0) @binding(3) var<storage, read_write> m: array<f32>;");
  w.line("@group(0) @binding(4) var<storage, read_write> v: array<f32>;");
  w.line("@group(0) @binding(5) var<storage, read> stats: array<f32>;");
  w.line("");
  w.line("@compute @workgroup_size(64)");
  w.open("fn update(@builtin(global_invocation_id) id: vec3<u32>) {");
  w.line("let i = id.x + id.y * 4194240u;");
  w.line("if (i >= u.n) { return; }");
  // A step whose loss or gradient is not finite updates nothing, so that training stops with the
  // parameters of the step before, as on the host (all exponent bits set: an infinity or a NaN).
  w.line("let bad = 0x7f800000u;");
  w.line("if ((bitcast<u32>(stats[0]) & bad) == bad || (bitcast<u32>(stats[1]) & bad) == bad) { return; }");
  w.line("var coef = 1.0;");
  w.line("if (u.clip > 0.0) { coef = min(1.0, u.clip / (sqrt(stats[1]) + 1e-6)); }");
  OPTIMIZERS[kind].wgsl(w);
  w.close();
  return w.toString();
}

/** The gradient norm on the device: partial sums of squares per workgroup, then their total. */
export const SUMSQ_WGSL = `struct U { n: u32, parts: u32, pad0: u32, pad1: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read_write> part: array<f32>;
@group(0) @binding(3) var<storage, read_write> stats: array<f32>;
var<workgroup> acc: array<f32, 256>;

@compute @workgroup_size(256)
fn sumsq(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  var s = 0.0;
  let base = (wid.x + wid.y * 65535u) * 4096u;
  for (var k = 0u; k < 16u; k++) {
    let i = base + k * 256u + lid.x;
    if (i < u.n) { s += g[i] * g[i]; }
  }
  acc[lid.x] = s;
  workgroupBarrier();
  for (var step = 128u; step > 0u; step = step >> 1u) {
    if (lid.x < step) { acc[lid.x] += acc[lid.x + step]; }
    workgroupBarrier();
  }
  if (lid.x == 0u) { part[wid.x + wid.y * 65535u] = acc[0]; }
}

@compute @workgroup_size(1)
fn total() {
  var s = 0.0;
  for (var p = 0u; p < u.parts; p++) { s += part[p]; }
  stats[1] = s;
}
`;

export function optimKernels(kind: OptimName): StageKernels & { normWgsl: string } {
  return { js: emitOptimJs(kind), wgsl: emitOptimWgsl(kind), normWgsl: SUMSQ_WGSL };
}
