import type { NodeId } from "../ir/graph.js";
import { dimAdd, dimConst, dimEq, type Dim } from "../../artifact/shape.js";
import { planKernel, type KernelPlan } from "../codegen/plan.js";
import type { BufferDecl, KernelIR } from "./types.js";

/** Gate blocks one unit's update may read of a stacked GEMM at most (its registers: 4 x this per row). */
export const MAX_GATES = 8;

/**
 * Which GEMMs of a kernel run with the elementwise loop after them as one launch (an epilogue): the GEMM
 * `[rows, G*H] = v x P^T` whose next plan step is a loop over `[rows, H]` that reads the GEMM only as its G
 * gate blocks `[:, g*H : (g+1)*H]` (or whole, when G is 1). Then the workgroup that computes a tile of
 * rows and hidden units computes every gate of those units (it reads the gate blocks' rows of the packed
 * weight, so the pack keeps its layout) and applies the loop in registers: h', c' and the tape are
 * written directly, and the GEMM's result reaches memory only where something else reads it. Refused
 * where the loop writes a buffer the GEMM reads (another workgroup could still be reading it).
 *
 * Per step this makes an LSTM's or GRU's forward one launch; before the loop, the input projection and its
 * bias one launch. The backward loop's GEMM has no such epilogue (its loop runs before it, and the next
 * step's loop needs every unit's gradient of a row): it stays two launches.
 */
export function epilogueGemms(
  k: KernelIR,
  buffers: readonly BufferDecl[],
  plan: KernelPlan = planKernel(k),
): NodeId[] {
  // Memory a binding touches at a step: a buffer that moves with t at t or t+1; any other one whole.
  const region = (b: number) => {
    const { buffer, shift } = k.bindings[b]!;
    const moves = buffers[buffer]!.extent === "seq" || buffers[buffer]!.extent === "seq1";
    return moves ? `${buffer}@${shift}` : `${buffer}`;
  };
  const g = k.graph;
  const out: NodeId[] = [];
  plan.steps.forEach((s, i) => {
    const next = plan.steps[i + 1];
    if (s.kind !== "barrier" || next?.kind !== "loop") return;
    const n = g.node(s.node);
    if (n.op !== "gemm" || !n.type.batched || !next.domain.batched || !next.domain.dim) return;
    const gates = gateBlocks(k, n.id, next.domain.dim);
    if (!gates) return;
    // Every read of the GEMM in the loop is of a whole gate block, at the loop's own position.
    const reads = next.items.flatMap((it) => (it.kind === "node" ? g.node(it.node).args : [it.store.node]));
    let readsIt = false;
    for (const a of reads) {
      if (a !== n.id && !gates.has(a)) continue;
      if (a === n.id && gates.size > 0) return;
      readsIt = true;
    }
    if (!readsIt) return;
    // No memory the GEMM reads is written by the loop.
    const written = new Set<string>();
    for (const it of next.items) {
      if (it.kind === "store") written.add(region(it.store.binding));
      else {
        const st = plan.storage.get(it.node);
        if (st?.kind === "binding") written.add(region(st.index));
      }
    }
    if (n.args.some((a) => bindingOf(plan, a).some((b) => written.has(region(b))))) return;
    out.push(n.id);
  });
  return out;
}

/**
 * The views of a GEMM `[rows, M]` that are whole gate blocks of `H` columns (view -> gate), when M is G * H
 * for 1 <= G <= MAX_GATES and every view of it is one; undefined otherwise. Empty for G = 1 read whole.
 */
export function gateBlocks(k: KernelIR, gemm: NodeId, H: Dim): Map<NodeId, number> | undefined {
  const g = k.graph;
  const G = gateCount(g.node(gemm).type.dims[0]!, H);
  if (!G) return undefined;
  const starts: Dim[] = [];
  for (let s = dimConst(0), i = 0; i < G; i++, s = dimAdd(s, H)) starts.push(s);
  const gates = new Map<NodeId, number>();
  for (const v of g.nodes) {
    if (!v.args.includes(gemm)) continue;
    if (v.op !== "cols") continue;
    const gate = starts.findIndex((s) => dimEq(s, v.attrs.start!));
    if (gate < 0 || !dimEq(v.attrs.len!, H)) return undefined;
    gates.set(v.id, gate);
  }
  return gates;
}

/** G such that M is G * H (M a GEMM's width, H its loop's), for G <= MAX_GATES; 0 when there is none. */
export function gateCount(M: Dim, H: Dim): number {
  let m = dimConst(0);
  for (let G = 1; G <= MAX_GATES; G++) if (dimEq((m = dimAdd(m, H)), M)) return G;
  return 0;
}

/** The bindings a value is read from (a leaf's, a stored node's, a view's base's). */
function bindingOf(plan: KernelPlan, id: NodeId): number[] {
  const st = plan.storage.get(id);
  const leaf = plan.leafBinding.get(id);
  if (leaf !== undefined) return [leaf];
  if (st?.kind === "binding") return [st.index];
  if (st?.kind === "view") return bindingOf(plan, st.of);
  return [];
}
