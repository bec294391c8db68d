// The losses of a network's readout, each defined once with its JS and WGSL kernels. A loss reads the
// readout's rows `y` (rows x O, row-major), the targets and which rows count (`valid`), and writes the
// gradient `dy` (zero on rows that do not count) scaled by `scale` = 1 / (the number of terms of the
// batch's mean), so that summing chunks (truncated BPTT) gives the mean over the whole batch.
//
// JS: `function loss(y, O, rows, tgt, valid, scale, dy)` returns the scaled sum; arithmetic in f64.
// WGSL: entry `rows` (one invocation per row: dy, and into `part` the row's term and, for class targets,
// whether its largest score is the target's; y is read from u.yOff in its buffer), then `total` (one
// invocation: into `stats` the scaled sum of the terms, the rows right and the rows that count). Targets are class
// ids (i32) for cross-entropy and O reals per row otherwise; the runtime checks them before a kernel runs.
import type { LossKind } from "../../artifact/network.js";
import type { StageKernels } from "../../artifact/network.js";
import { Writer } from "../codegen/writer.js";

interface LossDef {
  /** Whether targets are class ids, one per row (else O reals per row). */
  readonly classes: boolean;
  /** JS statements for a valid row at `at` (= r * O): add the row's term to `sum`, write dy[at + k]. */
  readonly js: (w: Writer) => void;
  /** WGSL statements for a valid row: set `l` (the row's term), write dy[at + k]. */
  readonly wgsl: (w: Writer) => void;
}

export const LOSSES: Readonly<Record<LossKind, LossDef>> = {
  mse: {
    classes: false,
    js: (w) =>
      w
        .open("for (let k = 0; k < O; k++) {")
        .line("const x = y[at + k];")
        .line("const z = tgt[at + k];")
        .line("sum += (x - z) * (x - z);")
        .line("dy[at + k] = 2 * (x - z) * scale;")
        .close(),
    wgsl: (w) =>
      w
        .open("for (var k = 0u; k < u.O; k++) {")
        .line("let x = y[u.yOff + at + k];")
        .line("let z = tgt[at + k];")
        .line("l += (x - z) * (x - z);")
        .line("dy[at + k] = 2.0 * (x - z) * u.scale;")
        .close(),
  },
  // log(1 + e^x) - x z, written so that neither exponential overflows.
  binary_cross_entropy: {
    classes: false,
    js: (w) =>
      w
        .open("for (let k = 0; k < O; k++) {")
        .line("const x = y[at + k];")
        .line("const z = tgt[at + k];")
        .line("sum += Math.max(x, 0) - x * z + Math.log1p(Math.exp(-Math.abs(x)));")
        .line("dy[at + k] = (1 / (1 + Math.exp(-x)) - z) * scale;")
        .close(),
    wgsl: (w) =>
      w
        .open("for (var k = 0u; k < u.O; k++) {")
        .line("let x = y[u.yOff + at + k];")
        .line("let z = tgt[at + k];")
        .line("l += max(x, 0.0) - x * z + log(1.0 + exp(-abs(x)));")
        .line("dy[at + k] = (1.0 / (1.0 + exp(-x)) - z) * u.scale;")
        .close(),
  },
  cross_entropy: {
    classes: true,
    js: (w) =>
      w
        .line("const c = tgt[r];")
        .line("let m = -Infinity;")
        .line("for (let k = 0; k < O; k++) m = Math.max(m, y[at + k]);")
        .line("let s = 0;")
        .line("for (let k = 0; k < O; k++) s += Math.exp(y[at + k] - m);")
        .line("const lse = m + Math.log(s);")
        .line("sum += lse - y[at + c];")
        .line(
          "for (let k = 0; k < O; k++) dy[at + k] = (Math.exp(y[at + k] - lse) - (k === c ? 1 : 0)) * scale;",
        ),
    wgsl: (w) =>
      w
        .line("let c = u32(tgt[r]);")
        .line("let a = u.yOff + at;")
        .line("var m = y[a];")
        .line("for (var k = 1u; k < u.O; k++) { m = max(m, y[a + k]); }")
        .line("var s = 0.0;")
        .line("for (var k = 0u; k < u.O; k++) { s += exp(y[a + k] - m); }")
        .line("let lse = m + log(s);")
        .line("l = lse - y[a + c];")
        .line("var best = 0u;")
        .line("for (var k = 1u; k < u.O; k++) { if (y[a + k] > y[a + best]) { best = k; } }")
        .line("hit = select(0.0, 1.0, best == c);")
        .line(
          "for (var k = 0u; k < u.O; k++) { dy[at + k] = (exp(y[a + k] - lse) - select(0.0, 1.0, k == c)) * u.scale; }",
        ),
  },
};

export function emitLossJs(kind: LossKind): string {
  const w = new Writer();
  w.open("function loss(y, O, rows, tgt, valid, scale, dy) {");
  w.line("let sum = 0;");
  w.open("for (let r = 0; r < rows; r++) {");
  w.line("const at = r * O;");
  w.open("if (!valid[r]) {");
  w.line("for (let k = 0; k < O; k++) dy[at + k] = 0;");
  w.line("continue;");
  w.close();
  LOSSES[kind].js(w);
  w.close();
  w.line("return sum * scale;");
  w.close();
  return w.toString();
}

export function emitLossWgsl(kind: LossKind): string {
  const w = new Writer();
  const target = LOSSES[kind].classes ? "i32" : "f32";
  w.line("struct U { rows: u32, O: u32, scale: f32, yOff: u32 }");
  w.line("@group(0) @binding(0) var<uniform> u: U;");
  w.line("@group(0) @binding(1) var<storage, read> y: array<f32>;");
  w.line(`@group(0) @binding(2) var<storage, read> tgt: array<${target}>;`);
  w.line("@group(0) @binding(3) var<storage, read> valid: array<u32>;");
  w.line("@group(0) @binding(4) var<storage, read_write> dy: array<f32>;");
  w.line("@group(0) @binding(5) var<storage, read_write> part: array<f32>;");
  w.line("@group(0) @binding(6) var<storage, read_write> stats: array<f32>;");
  w.line("");
  w.line("@compute @workgroup_size(64)");
  w.open("fn rows(@builtin(global_invocation_id) id: vec3<u32>) {");
  w.line("let r = id.x + id.y * 4194240u;");
  w.line("if (r >= u.rows) { return; }");
  w.line("let at = r * u.O;");
  w.open("if (valid[r] == 0u) {");
  w.line("for (var k = 0u; k < u.O; k++) { dy[at + k] = 0.0; }");
  w.line("part[2u * r] = 0.0;");
  w.line("part[2u * r + 1u] = 0.0;");
  w.line("return;");
  w.close();
  w.line("var l = 0.0;");
  w.line("var hit = 0.0;");
  LOSSES[kind].wgsl(w);
  w.line("part[2u * r] = l;");
  w.line("part[2u * r + 1u] = hit;");
  w.close();
  w.line("");
  w.line("@compute @workgroup_size(1)");
  w.open("fn total() {");
  w.line("var s = 0.0;");
  w.line("var right = 0.0;");
  w.line("var counted = 0.0;");
  w.open("for (var r = 0u; r < u.rows; r++) {");
  w.line("s += part[2u * r];");
  w.line("right += part[2u * r + 1u];");
  w.line("counted += f32(valid[r]);");
  w.close();
  w.line("stats[0] = s * u.scale;");
  w.line("stats[2] = right;");
  w.line("stats[3] = counted;");
  w.close();
  return w.toString();
}

export function lossKernels(kind: LossKind): StageKernels {
  return { js: emitLossJs(kind), wgsl: emitLossWgsl(kind) };
}
