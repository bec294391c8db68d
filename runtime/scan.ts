// The scans of a schedule's scan states (artifact/schedule.ts ScanState), laid out for one call, and the
// host's scan: what the JS backend runs, and the reference the other backends' scans are tested against.
import type { Artifact } from "../artifact/artifact.js";
import { rowSize, type Layout } from "./layout.js";
import type { FloatArray } from "./tensor.js";

/** One scan state in a layout: element offsets (in `mem`) of its buffers at t = 0, floats per batch row. */
export interface ScanLanes {
  readonly state: number;
  readonly grad: number;
  readonly coef: number;
  readonly row: number;
}

export function scanLanes(a: Artifact, L: Layout, sizes: Readonly<Record<string, number>>): ScanLanes[] {
  return (a.scans ?? []).map((s) => {
    // A row as the layout holds it (padded in an aligned layout): the state, its gradient and the
    // coefficient have the same type, so the same stride; the scan runs over the padding too.
    const row = L.stride[s.buffer] ?? rowSize(a.buffers[s.buffer]!.type, sizes);
    if (L.stride[s.grad] !== row || L.stride[s.coef] !== row)
      throw new Error(`cellc bug: the scan of buffer ${s.buffer} has buffers of different row strides`);
    return { state: L.base[s.buffer]!, grad: L.base[s.grad]!, coef: L.base[s.coef]!, row };
  });
}

/**
 * Forward: s[t+1] = a[t] * s[t] + s[t+1] for t = 0 .. T-1 (s[t+1] holds b[t]); a row past its length keeps
 * its state. Backward: g[t] = a[t] * g[t+1] + g[t] for t = T-1 .. 0; a row past its length carries g[t+1]
 * back unchanged and g[t+1] becomes 0 (as the step loop's masks leave it). Step by step over all lanes of a
 * step at once: memory in order.
 */
export function hostScan(
  mem: FloatArray,
  lanes: readonly ScanLanes[],
  T: number,
  B: number,
  direction: "forward" | "backward",
  lens?: Int32Array,
): void {
  for (const l of lanes) {
    const n = B * l.row;
    if (direction === "forward")
      for (let t = 0; t < T; t++) {
        const s0 = l.state + t * n;
        const s1 = s0 + n;
        const a = l.coef + t * n;
        if (!lens) for (let i = 0; i < n; i++) mem[s1 + i] += mem[a + i]! * mem[s0 + i]!;
        else
          for (let b = 0; b < B; b++) {
            const o = b * l.row;
            if (t < lens[b]!) for (let i = o; i < o + l.row; i++) mem[s1 + i] += mem[a + i]! * mem[s0 + i]!;
            else mem.copyWithin(s1 + o, s0 + o, s0 + o + l.row);
          }
      }
    else
      for (let t = T - 1; t >= 0; t--) {
        const g0 = l.grad + t * n;
        const g1 = g0 + n;
        const a = l.coef + t * n;
        if (!lens) for (let i = 0; i < n; i++) mem[g0 + i] += mem[a + i]! * mem[g1 + i]!;
        else
          for (let b = 0; b < B; b++) {
            const o = b * l.row;
            if (t < lens[b]!) for (let i = o; i < o + l.row; i++) mem[g0 + i] += mem[a + i]! * mem[g1 + i]!;
            else {
              mem.copyWithin(g0 + o, g1 + o, g1 + o + l.row);
              mem.fill(0, g1 + o, g1 + o + l.row);
            }
          }
      }
  }
}
