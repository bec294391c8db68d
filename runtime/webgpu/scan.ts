// The scan of a scan state on WebGPU (artifact/schedule.ts ScanState): three dispatches whatever T, in time
// chunks so that the work is parallel over lanes (batch rows x features) and chunks alike:
//   1. each (chunk, lane) scans its chunk from 0, keeping the product of its coefficients and the result;
//   2. each lane combines the chunks' results in order: the value entering every chunk;
//   3. each (chunk, lane) scans its chunk again from the value entering it, writing every step.
// Step 3 is the step loop's own recurrence (no product of coefficients reaches the results), so long
// sequences stay as accurate as the loop: a chunk's product only scales the value entering the next chunk,
// and where it underflows that value's share is below float32's resolution anyway. A zero entering value is
// not multiplied, so that an overflowing product (|a| > 1) cannot turn it into NaN.
import type { ScanLanes } from "../scan.js";
import type { GpuContext } from "./context.js";

const WORKGROUP = 64;
const SPAN = 65535 * WORKGROUP;
/** Threads to aim for in steps 1 and 3 (lanes x chunks): enough to fill a GPU. */
const THREADS = 1 << 15;

/** The scan's module, the same for every cell (`cellc compile --target wgsl` writes it beside the kernels). */
export const SCAN_WGSL = `// The scan of a scan state (cellc): chunk, carry, fix, dispatched in that order over n * nc, n and
// n * nc threads (workgroups of ${WORKGROUP}, x then y in rows of 65535 workgroups).
struct P { base: u32, coef: u32, n: u32, row: u32, T: u32, C: u32, nc: u32, back: u32, masked: u32, p0: u32, p1: u32, p2: u32 }
@group(0) @binding(0) var<storage, read_write> mem: array<f32>;
@group(0) @binding(1) var<storage, read_write> part: array<f32>;
@group(0) @binding(2) var<storage, read> lens: array<i32>;
@group(0) @binding(3) var<uniform> p: P;
// Position k of the scan (0 .. T-1 in its direction) is step t; it reads the coefficient a[t], adds to the
// value at dst(t) and reads the running value from src(t).
fn step_of(k: u32) -> u32 { return select(k, p.T - 1u - k, p.back == 1u); }
fn dst(t: u32) -> u32 { return p.base + select(t + 1u, t, p.back == 1u) * p.n; }
fn masked(t: u32, i: u32) -> bool { return p.masked == 1u && i32(t) >= lens[i / p.row]; }
@compute @workgroup_size(${WORKGROUP}) fn chunk(@builtin(global_invocation_id) g: vec3u) {
  let idx = g.x + g.y * ${SPAN}u;
  if (idx >= p.n * p.nc) { return; }
  let c = idx / p.n;
  let i = idx % p.n;
  var prod = 1.0;
  var q = 0.0;
  for (var k = c * p.C; k < min(p.T, (c + 1u) * p.C); k++) {
    let t = step_of(k);
    if (masked(t, i)) { continue; }
    let a = mem[p.coef + t * p.n + i];
    prod = prod * a;
    q = a * q + mem[dst(t) + i];
  }
  part[2u * idx] = prod;
  part[2u * idx + 1u] = q;
}
@compute @workgroup_size(${WORKGROUP}) fn carry(@builtin(global_invocation_id) g: vec3u) {
  let i = g.x + g.y * ${SPAN}u;
  if (i >= p.n) { return; }
  var q = mem[p.base + select(0u, p.T, p.back == 1u) * p.n + i];
  for (var c = 0u; c < p.nc; c++) {
    let at = 2u * (c * p.n + i);
    let prod = part[at];
    part[at] = q;
    q = select(prod * q, 0.0, q == 0.0) + part[at + 1u];
  }
}
@compute @workgroup_size(${WORKGROUP}) fn fix(@builtin(global_invocation_id) g: vec3u) {
  let idx = g.x + g.y * ${SPAN}u;
  if (idx >= p.n * p.nc) { return; }
  let c = idx / p.n;
  let i = idx % p.n;
  var q = part[2u * idx];
  for (var k = c * p.C; k < min(p.T, (c + 1u) * p.C); k++) {
    let t = step_of(k);
    let at = dst(t) + i;
    if (masked(t, i)) {
      // Past the row's length: the state is kept; its gradient carried back to the last valid step, 0 after.
      mem[at] = select(q, 0.0, p.back == 1u && i32(t) > lens[i / p.row]);
      continue;
    }
    q = mem[p.coef + t * p.n + i] * q + mem[at];
    mem[at] = q;
  }
  // The final state's gradient, read by step 2, is 0 for a row shorter than T (as the loop's masks leave it).
  if (p.back == 1u && c == 0u && masked(p.T - 1u, i)) { mem[p.base + p.T * p.n + i] = 0.0; }
}
`;

interface ScanPipelines {
  readonly chunk: GPUComputePipeline;
  readonly carry: GPUComputePipeline;
  readonly fix: GPUComputePipeline;
  readonly layout: GPUBindGroupLayout;
}
const pipelineCache = new WeakMap<GPUDevice, ScanPipelines>();

function pipelines(device: GPUDevice): ScanPipelines {
  let p = pipelineCache.get(device);
  if (!p) {
    const storage = (type: GPUBufferBindingType) => ({
      visibility: GPUShaderStage.COMPUTE,
      buffer: { type },
    });
    const layout = device.createBindGroupLayout({
      entries: [
        { binding: 0, ...storage("storage") },
        { binding: 1, ...storage("storage") },
        { binding: 2, ...storage("read-only-storage") },
        { binding: 3, visibility: GPUShaderStage.COMPUTE, buffer: { type: "uniform" } },
      ],
    });
    const module = device.createShaderModule({ code: SCAN_WGSL });
    const pl = device.createPipelineLayout({ bindGroupLayouts: [layout] });
    const make = (entryPoint: string) =>
      device.createComputePipeline({ layout: pl, compute: { module, entryPoint } });
    pipelineCache.set(device, (p = { chunk: make("chunk"), carry: make("carry"), fix: make("fix"), layout }));
  }
  return p;
}

/** The scans of one call, planned once per sequence length: parameters and the chunks' scratch. */
export class GpuScans {
  private readonly params: GPUBuffer[] = []; // per lane set: forward, masked forward, backward, masked backward
  private readonly part: GPUBuffer;
  private readonly sizes: { n: number; nc: number }[] = [];

  constructor(
    private readonly ctx: GpuContext,
    private readonly lanes: readonly ScanLanes[],
    T: number,
    B: number,
  ) {
    let most = 1;
    for (const l of lanes) {
      const n = B * l.row;
      const nc = Math.max(1, Math.min(T, Math.ceil(THREADS / Math.max(1, n))));
      const C = Math.ceil(T / nc);
      const chunks = Math.ceil(T / C);
      this.sizes.push({ n, nc: chunks });
      most = Math.max(most, 2 * n * chunks);
      for (const back of [0, 1])
        for (const masked of [0, 1]) {
          const buf = ctx.buffer(48, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
          const base = back ? l.grad : l.state;
          ctx.write(buf, 0, Uint32Array.from([base, l.coef, n, l.row, T, C, chunks, back, masked, 0, 0, 0]));
          this.params.push(buf);
        }
    }
    this.part = ctx.buffer(4 * most, GPUBufferUsage.STORAGE);
  }

  /** Encodes the scans of one direction into a compute pass: three dispatches per scan state. */
  encode(pass: GPUComputePassEncoder, mem: GPUBuffer, lens: GPUBuffer, masked: boolean, back: boolean): void {
    const device = this.ctx.device;
    const pl = pipelines(device);
    this.lanes.forEach((_, k) => {
      const params = this.params[4 * k + (back ? 2 : 0) + (masked ? 1 : 0)]!;
      const bg = device.createBindGroup({
        layout: pl.layout,
        entries: [
          { binding: 0, resource: { buffer: mem } },
          { binding: 1, resource: { buffer: this.part } },
          { binding: 2, resource: { buffer: lens } },
          { binding: 3, resource: { buffer: params } },
        ],
      });
      const { n, nc } = this.sizes[k]!;
      const groups = (threads: number): [number, number] => {
        const g = Math.ceil(threads / WORKGROUP);
        return [Math.min(g, 65535), Math.ceil(g / 65535)];
      };
      if (n === 0) return;
      pass.setBindGroup(0, bg);
      pass.setPipeline(pl.chunk);
      pass.dispatchWorkgroups(...groups(n * nc));
      pass.setPipeline(pl.carry);
      pass.dispatchWorkgroups(...groups(n));
      pass.setPipeline(pl.fix);
      pass.dispatchWorkgroups(...groups(n * nc));
    });
  }
}
