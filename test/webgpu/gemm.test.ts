// The WGSL GEMMs (compiler/codegen/wgsl-gemm.ts) on their own, against a float64 reference: every operand
// form (contiguous along the inner index or along rows/columns), aligned vec4 loads and the scalar
// fallback for operands that do not start on 16 bytes, sizes that end inside a tile, accumulation, and
// the gated form whose tile gathers the rows of every gate block of its units.
import { describe, expect, it } from "vitest";
import { GEMM_TILES } from "../../compiler/codegen/wgsl.js";
import {
  gemmBody,
  gemmHelpers,
  gemmStore,
  threadsOf,
  tileFloats,
  type GemmOperand,
  type GemmTiles,
} from "../../compiler/codegen/wgsl-gemm.js";
import { Writer } from "../../compiler/codegen/writer.js";
import { Rng } from "../../runtime/init.js";
import { hasWebGpu, webgpu } from "./setup.js";

interface Case {
  readonly tiles: GemmTiles;
  readonly a: "r" | "o";
  readonly b: "r" | "o";
  readonly aligned: boolean;
  readonly accumulate?: boolean;
}
const X = 37; // columns (units per gate when gated)
const Y = 70; // rows: two tiles of 64 over all rows, five of 16 per step
const R = 45; // inner: ends inside the third step of 16

const pad4 = (n: number) => Math.ceil(n / 4) * 4;

async function run(c: Case): Promise<number> {
  const device = (await webgpu())!.device;
  const G = c.tiles.gates;
  const rng = new Rng(5);
  // A(y, r) and B(r, o) (o = g * X + u when gated) as float32, laid out per their contiguous axis.
  const cols = G * X;
  const A = Array.from({ length: Y * R }, () => 2 * rng.next() - 1).map(Math.fround);
  const Bm = Array.from({ length: R * cols }, () => 2 * rng.next() - 1).map(Math.fround);
  const shift = c.aligned ? 0 : 1; // an offset that is not a multiple of 4 floats
  const ldA = c.a === "r" ? pad4(R) : pad4(Y);
  const ldB = c.b === "r" ? pad4(R) : pad4(cols);
  const ldC = pad4(cols);
  const offA = 8 + shift;
  const sizeA = (c.a === "r" ? Y : R) * ldA;
  const offC = pad4(offA + sizeA + 4);
  const mem = new Float32Array(offC + Y * ldC + 8);
  const offB = 4 + shift;
  const pmem = new Float32Array(offB + (c.b === "r" ? cols : R) * ldB + 8);
  for (let y = 0; y < Y; y++)
    for (let r = 0; r < R; r++) mem[offA + (c.a === "r" ? y * ldA + r : r * ldA + y)] = A[y * R + r]!;
  for (let r = 0; r < R; r++)
    for (let o = 0; o < cols; o++) pmem[offB + (c.b === "r" ? o * ldB + r : r * ldB + o)] = Bm[r * cols + o]!;
  const C0 = Array.from({ length: Y * cols }, () => (c.accumulate ? rng.next() : 0));
  for (let y = 0; y < Y; y++) for (let o = 0; o < cols; o++) mem[offC + y * ldC + o] = C0[y * cols + o]!;

  const op = (arena: string, off: number, ld: number, contig: "r" | "o"): GemmOperand => ({
    arena,
    off: `${off}u`,
    ld: `${ld}u`,
    contig,
    aligned: c.aligned,
  });
  const spec = {
    tiles: c.tiles,
    X: `${X}u`,
    Y: `${Y}u`,
    R: `${R}u`,
    a: op("mem", offA, ldA, c.a),
    b: op("pmem", offB, ldB, c.b),
  };
  const w = new Writer();
  w.line("@group(0) @binding(0) var<storage, read_write> mem4: array<vec4<f32>>;");
  w.line("@group(0) @binding(1) var<storage, read_write> pmem4: array<vec4<f32>>;");
  const [fa, fb] = tileFloats(c.tiles);
  w.line(`var<workgroup> tileA: array<vec4<f32>, ${fa / 4}>;`);
  w.line(`var<workgroup> tileB: array<vec4<f32>, ${fb / 4}>;`);
  gemmHelpers(w);
  const [nx, ny] = threadsOf(c.tiles);
  w.open(
    `@compute @workgroup_size(${nx}, ${ny}) fn main(@builtin(local_invocation_id) l: vec3u, @builtin(workgroup_id) wg: vec3u) {`,
  );
  gemmBody(w, spec, (g, u) => `${g} * ${X}u + ${u}`);
  if (G === 1) gemmStore(w, spec, { ...op("mem", offC, ldC, "o"), aligned: true }, !!c.accumulate);
  else
    for (let i = 0; i < c.tiles.ry; i++)
      for (let q = 0; q < 4; q++)
        for (let g = 0; g < G; g++) {
          const y = `(y0 + l.y * ${c.tiles.ry}u + ${i}u)`;
          const u = `(x0 + l.x * 4u + ${q}u)`;
          w.line(
            `if (${y} < ${Y}u && ${u} < ${X}u) { mem_set(${offC}u + ${y} * ${ldC}u + ${g}u * ${X}u + ${u}, c${i}_${g}[${q}]); }`,
          );
        }
  w.close();

  const module = device.createShaderModule({ code: w.toString() });
  const errors = (await module.getCompilationInfo()).messages.filter((m) => m.type === "error");
  expect(errors.map((e) => e.message)).toEqual([]);
  const pipeline = await device.createComputePipelineAsync({
    layout: "auto",
    compute: { module, entryPoint: "main" },
  });
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;
  const bufs = [mem, pmem].map((data) => {
    const b = device.createBuffer({ size: data.byteLength, usage });
    device.queue.writeBuffer(b, 0, data);
    return b;
  });
  const bg = device.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: bufs.map((buffer, binding) => ({ binding, resource: { buffer } })),
  });
  const read = device.createBuffer({
    size: mem.byteLength,
    usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
  });
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass();
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, bg);
  pass.dispatchWorkgroups(Math.ceil(X / c.tiles.tx), Math.ceil(Y / c.tiles.ty));
  pass.end();
  enc.copyBufferToBuffer(bufs[0]!, 0, read, 0, mem.byteLength);
  device.queue.submit([enc.finish()]);
  await read.mapAsync(GPUMapMode.READ);
  const out = new Float32Array(read.getMappedRange().slice(0));
  read.unmap();
  let worst = 0;
  for (let y = 0; y < Y; y++)
    for (let o = 0; o < cols; o++) {
      let want = C0[y * cols + o]!;
      for (let r = 0; r < R; r++) want += A[y * R + r]! * Bm[r * cols + o]!;
      worst = Math.max(worst, Math.abs(out[offC + y * ldC + o]! - want) / (1 + Math.abs(want)));
    }
  // Nothing is written past the rows' ends (the padding) nor outside C.
  for (let y = 0; y < Y; y++) for (let o = cols; o < ldC; o++) expect(out[offC + y * ldC + o]).toBe(0);
  expect(out[offC - 1]).toBe(mem[offC - 1]);
  return worst;
}

describe.skipIf(!hasWebGpu)("the WGSL GEMMs against a float64 reference", () => {
  // Each case compiles its own kernel (seconds on a CPU driver): every form once, not every combination.
  const { big, step, fused } = GEMM_TILES;
  const cases: [string, Case][] = [
    [
      "over all rows: A and B along the inner index (gemm), vec4 loads",
      { tiles: big, a: "r", b: "r", aligned: true },
    ],
    [
      "over all rows: B along its columns (gemmT), unaligned operands",
      { tiles: big, a: "r", b: "o", aligned: false },
    ],
    [
      "over all rows: both along rows and columns (a weight's gradient), accumulating",
      { tiles: big, a: "o", b: "o", aligned: true, accumulate: true },
    ],
    ["per step: gemm, unaligned operands", { tiles: step, a: "r", b: "r", aligned: false }],
    ["per step: gemmT, vec4 loads", { tiles: step, a: "r", b: "o", aligned: true }],
    ["per step: A along rows, unaligned operands", { tiles: step, a: "o", b: "o", aligned: false }],
    [
      "fused per step, 4 gate blocks gathered per unit",
      { tiles: fused("B", 4), a: "r", b: "r", aligned: true },
    ],
    [
      "fused per step, 3 gate blocks, unaligned operands",
      { tiles: fused("B", 3), a: "r", b: "r", aligned: false },
    ],
    [
      "fused per step, 8 gate blocks (a shorter inner step)",
      { tiles: fused("B", 8), a: "r", b: "r", aligned: true },
    ],
    ["fused over all rows, 4 gate blocks", { tiles: fused("TB", 4), a: "r", b: "r", aligned: true }],
  ];
  for (const [name, c] of cases) it(name, async () => expect(await run(c)).toBeLessThan(1e-5));
});
