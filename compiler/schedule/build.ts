import { differentiate, upstreamName } from "../autodiff/grad.js";
import type { CellIR } from "../ir/cell.js";
import { Builder, Graph, type Node, type NodeId } from "../ir/graph.js";
import { dimAdd, dimConst, type Dim, type Type } from "../../artifact/shape.js";
import { OPS } from "../ops/ops.js";
import { extract } from "../passes/rebuild.js";
import { simplifyNode } from "../passes/simplify.js";
import { findRecurrences } from "./scan.js";
import { epilogueGemms } from "./fuse.js";
import { readsState, stackCell } from "./stack.js";
import {
  bindingKey,
  type Binding,
  type BufferDecl,
  type BufferKind,
  type Extent,
  type KernelIR,
  type MaskOp,
  type OuterAccumulate,
  type Schedule,
  type ScanState,
  type Signature,
  type Store,
} from "./types.js";

/** A kernel under construction: its graph reads buffers through bindings created on first use. */
class KernelBuilder {
  readonly b = new Builder(new Graph());
  readonly bindings: Binding[] = [];
  readonly stores: Store[] = [];
  readonly outers: OuterAccumulate[] = [];
  private readonly keys = new Map<string, number>();

  constructor(
    readonly name: string,
    readonly rows: "B" | "TB",
    private readonly buffers: readonly BufferDecl[],
  ) {}

  bind(buffer: number, shift: 0 | 1 = 0): number {
    const key = bindingKey({ buffer, shift });
    let i = this.keys.get(key);
    if (i === undefined) {
      const { type, arena } = this.buffers[buffer]!;
      i = this.bindings.push({ buffer, shift, type, arena }) - 1;
      this.keys.set(key, i);
    }
    return i;
  }
  leaf(buffer: number, shift: 0 | 1 = 0): NodeId {
    const i = this.bind(buffer, shift);
    return this.b.g.add(
      "leaf",
      [],
      { role: "buffer", name: bindingKey({ buffer, shift }) },
      this.bindings[i]!.type,
    );
  }
  store(buffer: number, shift: 0 | 1, node: NodeId, accumulate = false) {
    this.stores.push({ binding: this.bind(buffer, shift), node, accumulate });
  }
  finish(premask: MaskOp[] = [], postmask: MaskOp[] = []): KernelIR {
    return {
      name: this.name,
      rows: this.rows,
      graph: this.b.g,
      bindings: this.bindings,
      stores: this.stores,
      outers: this.outers,
      premask,
      postmask,
    };
  }
}

/** A forward kernel with its GEMMs that take the loop after them as an epilogue (fuse.ts). */
function withEpilogues(k: KernelIR, buffers: readonly BufferDecl[]): KernelIR {
  const fuse = epilogueGemms(k, buffers);
  return fuse.length ? { ...k, fuse } : k;
}

/**
 * Plans how a whole sequence runs (see types.ts), for any cell:
 * - stack the matvecs that share an operand into one gemm on a packed weight (stack.ts);
 * - hoist everything that does not read the state out of the time loop: one kernel over all T*B rows
 *   (the input projections of every step in one GEMM, their biases added);
 * - per step, what reads the state: the gemm on the previous state, then fused elementwise work, split
 *   only where an elementwise result feeds a gemm in the same step;
 * - backward: per step only what the gradient of the previous state needs; everything else (weight,
 *   bias and input gradients) once after the loop over all T*B rows, from the gradients the loop keeps.
 */
export interface ScheduleOptions {
  /** false: every state runs in the step loop, scan states too (to compare the two). Default true. */
  readonly scan?: boolean;
}

export function buildSchedule(cell: CellIR, opts: ScheduleOptions = {}): Schedule {
  const st = stackCell(cell);
  const fg = st.graph;
  // Scan states (scan.ts): their coefficient and offset are computed before the loop, the recurrence is a
  // scan; what reads them after it runs over all T*B rows when no state needs the step loop ("pure").
  const recurrences = findRecurrences(cell, st, opts.scan !== false);
  const isScan = recurrences.map((r) => r.scan);
  const scanStates = recurrences.filter((r) => r.scan);
  const anyScan = scanStates.length > 0;
  const pure = anyScan && scanStates.length === cell.states.length;
  const scanNextOf = new Map<NodeId, number>();
  recurrences.forEach((r, i) => r.scan && scanNextOf.set(st.next[i]!, i));
  const state = readsState(fg);
  // What the step computes: every node that reads a state, except what only a scan state's next value needs.
  const inStep = new Set<NodeId>();
  {
    const stack = [...st.outputs, ...st.next.filter((_, i) => !isScan[i])];
    while (stack.length) {
      const id = stack.pop()!;
      if (inStep.has(id) || !state[id] || scanNextOf.has(id)) continue;
      inStep.add(id);
      stack.push(...fg.node(id).args);
    }
  }
  // What the step reads of what was hoisted out of the loop (through a view: its base) is kept whole.
  const isComputed = (n: Node) => OPS[n.op].class !== "leaf";
  const hoisted = new Set<NodeId>();
  for (const n of fg.nodes)
    if (state[n.id] && isComputed(n) && (!anyScan || inStep.has(n.id)))
      for (const a of n.args) {
        let m = fg.node(a);
        while (OPS[m.op].class === "view") m = fg.node(m.args[0]!);
        if (!state[m.id] && isComputed(m)) hoisted.add(m.id);
      }
  // The backward reads a scan state's next value from its state buffer and its coefficient from its own.
  const kept = new Set(hoisted);
  for (const r of scanStates) {
    kept.add(st.next[r.state]!);
    kept.add(r.coef!);
  }
  const bwd = differentiate(cell, st, kept);

  const buffers: BufferDecl[] = [];
  const index = new Map<string, number>();
  const buffer = (kind: BufferKind, i: number, name: string, type: Type, extent: Extent): number => {
    const key = `${kind}:${i}`;
    let id = index.get(key);
    if (id === undefined) {
      const arena = kind === "param" || kind === "pack" || kind.startsWith("grad_p") ? "pmem" : "mem";
      id = buffers.push({ kind, index: i, name, type, extent, arena }) - 1;
      index.set(key, id);
    }
    return id;
  };
  const seqOf = (t: Type): Extent => (t.batched ? "seq" : "one");
  const outTypes = st.outputs.map((o) => ({ dims: fg.node(o).type.dims, batched: true }));
  const inputBuf = cell.inputs.map((x, i) => buffer("input", i, x.name, x.type, "seq"));
  const stateBuf = cell.states.map((s, i) => buffer("state", i, s.name, s.type, "seq1"));
  const outputBuf = cell.outputs.map((o, i) => buffer("output", i, o.name, outTypes[i]!, "seq"));
  const paramBuf = cell.params.map((p, i) => buffer("param", i, p.name, p.type, "one"));
  const packType = (k: number): Type => ({ dims: [st.packs[k]!.rows, st.packs[k]!.cols], batched: false });
  const packBuf = st.packs.map((_, k) => buffer("pack", k, `P${k}`, packType(k), "one"));

  /** Leaves of the forward graph as buffers. */
  const forwardLeaf = (kb: KernelBuilder, n: Node): NodeId | undefined => {
    if (n.op !== "leaf") return undefined;
    const i = (list: readonly { name: string }[]) => list.findIndex((x) => x.name === n.attrs.name);
    switch (n.attrs.role) {
      case "input":
        return kb.leaf(inputBuf[i(cell.inputs)]!);
      case "state":
        return kb.leaf(stateBuf[i(cell.states)]!);
      case "param":
        return kb.leaf(paramBuf[i(cell.params)]!);
      case "pack":
        return kb.leaf(packBuf[n.attrs.pack!]!);
      default:
        throw new Error(`forward leaf ${n.attrs.role}`);
    }
  };

  // ---- Forward: what is hoisted before the loop, what runs at each step, what is kept on the tape.
  const coefBuf = new Map<number, number>();
  scanStates.forEach((r, k) =>
    coefBuf.set(r.state, buffer("coef", k, cell.states[r.state]!.name, cell.states[r.state]!.type, "seq")),
  );
  const coefOf = new Map(scanStates.map((r) => [r.coef!, coefBuf.get(r.state)!]));
  const tapeOf = new Map<NodeId, number>();
  for (const id of [...hoisted, ...bwd.tape])
    if (!tapeOf.has(id) && !scanNextOf.has(id) && !coefOf.has(id)) {
      const t = fg.node(id).type;
      tapeOf.set(id, buffer("tape", tapeOf.size, `%${id}`, t, seqOf(t)));
    }
  /** Where a forward value read later lives: a tape, a scan state's next value, a coefficient. */
  const tapeRef = (id: NodeId): { buffer: number; shift: 0 | 1 } | undefined => {
    const s = scanNextOf.get(id);
    if (s !== undefined) return { buffer: stateBuf[s]!, shift: 1 };
    const c = coefOf.get(id) ?? tapeOf.get(id);
    return c === undefined ? undefined : { buffer: c, shift: 0 };
  };

  const before = new KernelBuilder("before", "TB", buffers);
  const step = new KernelBuilder("step", pure ? "TB" : "B", buffers);
  const storeTo = (id: NodeId) => (state[id] ? step : before);
  const fwdRoots = [
    ...st.outputs.map((o, i) => ({ node: o, buffer: outputBuf[i]!, shift: 0 as const })),
    ...st.next.flatMap((nx, s) => (isScan[s] ? [] : [{ node: nx, buffer: stateBuf[s]!, shift: 1 as const }])),
    ...[...tapeOf].map(([node, buffer]) => ({ node, buffer, shift: 0 as const })),
    // A scan state's coefficient to its buffer, its offset b into the state's buffer at t + 1, where the
    // scan adds a * s.
    ...scanStates.flatMap((r) => [
      { node: r.coef!, buffer: coefBuf.get(r.state)!, shift: 0 as const },
      { node: r.offset!, buffer: stateBuf[r.state]!, shift: 1 as const },
    ]),
  ];
  for (const kb of [before, step]) {
    const mine = fwdRoots.filter((r) => storeTo(r.node) === kb);
    const memo = new Map<NodeId, NodeId>();
    const resolve = (n: Node) => {
      if (kb === step) {
        // The step reads what was hoisted, and a scan state's next value where the scan left it.
        const t = tapeRef(n.id);
        if (t !== undefined && (!state[n.id] || scanNextOf.has(n.id))) return kb.leaf(t.buffer, t.shift);
      }
      return forwardLeaf(kb, n);
    };
    const ids = extract(
      fg,
      mine.map((r) => r.node),
      kb.b,
      resolve,
      memo,
    );
    mine.forEach((r, i) => kb.store(r.buffer, r.shift, ids[i]!));
  }
  const forwardMask: MaskOp[] = [
    ...stateBuf.flatMap((s, i) => (isScan[i] ? [] : [{ dst: step.bind(s, 1), src: step.bind(s, 0) }])),
    ...outputBuf.map((o) => ({ dst: step.bind(o, 0) })),
  ];

  // ---- Backward: the loop computes what the previous state's gradient needs; the rest waits for after it.
  const bg = bwd.graph;
  const gradOutBuf = cell.outputs.map((o, i) => buffer("grad_output", i, o.name, outTypes[i]!, "seq"));
  const gradStateBuf = cell.states.map((s, i) => buffer("grad_state", i, s.name, s.type, "seq1"));
  const gradInputBuf = cell.inputs.map((x, i) => buffer("grad_input", i, x.name, x.type, "seq"));
  const gradParamBuf = cell.params.map((p, i) => buffer("grad_param", i, p.name, p.type, "one"));
  const gradPackBuf = st.packs.map((_, k) => buffer("grad_pack", k, `P${k}`, packType(k), "one"));
  const carryBuf = cell.states.map((s, i) => (isScan[i] ? -1 : buffer("carry", i, s.name, s.type, "batch")));

  const inLoop = new Set<NodeId>();
  const mark = (id: NodeId) => {
    const stack = [id];
    while (stack.length) {
      const cur = stack.pop()!;
      if (inLoop.has(cur)) continue;
      inLoop.add(cur);
      stack.push(...bg.node(cur).args);
    }
  };
  bwd.gradStates.forEach(mark);
  const upstream: boolean[] = [];
  for (const n of bg.nodes)
    upstream[n.id] = (n.op === "leaf" && n.attrs.role === "upstream") || n.args.some((a) => upstream[a]);
  // The loop runs before the reverse scan, with a scan state's upstream (the gradient of its next value
  // from later steps) taken as 0: what depends on it is computed after the scan, not kept from the loop.
  const scanUpstream = new Set(scanStates.map((r) => upstreamName("next", r.state)));
  const afterScan: boolean[] = [];
  for (const n of bg.nodes)
    afterScan[n.id] =
      (n.op === "leaf" && n.attrs.role === "upstream" && scanUpstream.has(n.attrs.name!)) ||
      n.args.some((a) => afterScan[a]);

  const afterRoots = [
    ...bwd.gradInputs,
    ...bwd.gradParams.filter((g): g is NodeId => g !== undefined),
    ...bwd.outers.flatMap((o) => [o.dy, o.x]),
  ];
  // Gradients of the loop that the after-loop work reads: kept per step (a block of a kept stacked
  // gradient is read through it).
  const readByAfter = new Set<NodeId>();
  {
    const seen = new Set<NodeId>();
    const stack = [...afterRoots];
    while (stack.length) {
      const id = stack.pop()!;
      if (seen.has(id)) continue;
      seen.add(id);
      // (With scan states, an upstream leaf is read from its buffer after the loop, not copied.)
      const leaf = anyScan && bg.node(id).op === "leaf";
      if (inLoop.has(id) && upstream[id] && !afterScan[id] && !leaf) readByAfter.add(id);
      else stack.push(...bg.node(id).args);
    }
  }
  const gtapeOf = new Map<NodeId, number>();
  const viewOf = new Map<NodeId, { concat: NodeId; start: Dim }>();
  for (const id of readByAfter) {
    const n = bg.node(id);
    if (!n.type.batched) throw new Error("cellc bug: an unbatched gradient computed in the backward loop");
    if (n.op !== "concat") continue;
    let off: Dim = dimConst(0);
    for (const a of n.args) {
      if (n.args.filter((x) => x === a).length === 1 && !viewOf.has(a))
        viewOf.set(a, { concat: id, start: off });
      off = dimAdd(off, bg.node(a).type.dims[0]!);
    }
  }
  for (const id of readByAfter)
    if (!viewOf.has(id) || !readByAfter.has(viewOf.get(id)!.concat))
      gtapeOf.set(
        id,
        buffer("gtape", gtapeOf.size, `%${id}`, { dims: bg.node(id).type.dims, batched: true }, "seq"),
      );

  const loop = new KernelBuilder("loop", pure ? "TB" : "B", buffers);
  const backwardLeaf = (kb: KernelBuilder, n: Node): NodeId | undefined => {
    if (n.op !== "leaf") return undefined;
    if (n.attrs.role === "tape") {
      const t = tapeRef(bwd.tape[Number(n.attrs.name!.slice(1))]!)!;
      return kb.leaf(t.buffer, t.shift);
    }
    if (n.attrs.role === "upstream") {
      const name = n.attrs.name!;
      const i = (kind: "out" | "next", count: number) =>
        [...Array(count).keys()].find((k) => upstreamName(kind, k) === name);
      const o = i("out", cell.outputs.length);
      if (o !== undefined) return kb.leaf(gradOutBuf[o]!);
      const s = i("next", cell.states.length)!;
      // In the loop, a scan state's gradient from later steps is not known yet: the scan adds it.
      if (isScan[s] && kb === loop) return kb.b.zero();
      return kb.leaf(gradStateBuf[s]!, 1);
    }
    return forwardLeaf(kb, n);
  };

  {
    const roots = [...bwd.gradStates, ...gtapeOf.keys()];
    // With scan states, their upstream is 0 here: the terms it zeroes are simplified away.
    const ids = extract(
      bg,
      roots,
      loop.b,
      (n) => backwardLeaf(loop, n),
      new Map(),
      anyScan ? simplifyNode : undefined,
    );
    bwd.gradStates.forEach((_, s) => loop.store(gradStateBuf[s]!, 0, ids[s]!));
    [...gtapeOf.values()].forEach((buf, k) => loop.store(buf, 0, ids[bwd.gradStates.length + k]!));
  }
  // Masks of scan states are the scan's own.
  const loopPre: MaskOp[] = [
    ...gradOutBuf.map((g) => ({ dst: loop.bind(g, 0) })),
    ...gradStateBuf.flatMap((g, s) =>
      isScan[s] ? [] : [{ dst: loop.bind(g, 1), save: loop.bind(carryBuf[s]!) }],
    ),
  ];
  const loopPost: MaskOp[] = gradStateBuf.flatMap((g, s) =>
    isScan[s] ? [] : [{ dst: loop.bind(g, 0), src: loop.bind(carryBuf[s]!) }],
  );

  const after = new KernelBuilder("after", "TB", buffers);
  {
    const resolve = (n: Node): NodeId | undefined => {
      const g = gtapeOf.get(n.id);
      if (g !== undefined) return after.leaf(g);
      const v = viewOf.get(n.id);
      if (v !== undefined && gtapeOf.has(v.concat))
        return after.b.op(
          "cols",
          [after.leaf(gtapeOf.get(v.concat)!)],
          { start: v.start, len: n.type.dims[0]! },
          { dims: n.type.dims, batched: true },
        );
      return backwardLeaf(after, n);
    };
    const ids = extract(bg, afterRoots, after.b, resolve);
    let k = 0;
    bwd.gradInputs.forEach((_, i) => after.store(gradInputBuf[i]!, 0, ids[k++]!));
    bwd.gradParams.forEach((g, p) => {
      if (g !== undefined) after.store(gradParamBuf[p]!, 0, ids[k++]!, true);
    });
    for (const o of bwd.outers) {
      after.outers.push({ binding: after.bind(gradPackBuf[o.pack]!), dy: ids[k]!, x: ids[k + 1]! });
      k += 2;
    }
  }

  const signature: Signature = {
    name: cell.name,
    dims: cell.dims,
    inputs: cell.inputs,
    states: cell.states,
    params: cell.params.map(({ name, type, init }) => ({ name, type, init })),
    outputs: cell.outputs.map((o, i) => {
      const s = st.next.indexOf(st.outputs[i]!);
      return { name: o.name, type: outTypes[i]!, ...(s >= 0 ? { state: s } : {}) };
    }),
    ...(cell.unusedParams?.length ? { unusedParams: cell.unusedParams } : {}),
  };
  const scans: ScanState[] = scanStates.map((r) => ({
    state: r.state,
    buffer: stateBuf[r.state]!,
    grad: gradStateBuf[r.state]!,
    coef: coefBuf.get(r.state)!,
  }));
  return {
    signature,
    buffers,
    packs: st.packs,
    recurrences: recurrences.map(({ state, scan, why, at }) => ({ state, scan, why, ...(at ? { at } : {}) })),
    scans,
    forward: {
      before: withEpilogues(before.finish(), buffers),
      step: withEpilogues(step.finish([], forwardMask), buffers),
    },
    backward: { loop: loop.finish(loopPre, loopPost), after: after.finish() },
  };
}
