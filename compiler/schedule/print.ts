import { planKernel, type KernelPlan } from "../codegen/plan.js";
import { lineBounds, lineCol, type SourceMap } from "../diag/span.js";
import { gateCount } from "./fuse.js";
import type { NodeId } from "../ir/graph.js";
import { printGraph } from "../ir/print.js";
import { dimAdd, dimConst, printDim, type Dim, type Type } from "../../artifact/shape.js";
import {
  KERNEL_NAMES,
  kernelsOf,
  type BufferDecl,
  type KernelIR,
  type KernelName,
  type Schedule,
} from "./types.js";

const EXTENT: Record<BufferDecl["extent"], string[]> = {
  seq: ["T", "B"],
  seq1: ["T+1", "B"],
  batch: ["B"],
  one: [],
};
const WHEN: Record<KernelName, string> = {
  before: "forward, once before the loop, over all T*B rows",
  step: "forward, at each step t = 0 .. T-1, over B rows",
  loop: "backward, at each step t = T-1 .. 0, over B rows",
  after: "backward, once after the loop, over all T*B rows",
};
/** Every state a scan state: the step and loop kernels run once, around the scans. */
const WHEN_SCAN: Record<KernelName, string> = {
  before: "forward, once before the scan, over all T*B rows",
  step: "forward, once after the scan, over all T*B rows",
  loop: "backward, once before the reverse scan, over all T*B rows",
  after: "backward, once after the reverse scan, over all T*B rows",
};

function shapeOf(b: BufferDecl): string {
  return `[${[...EXTENT[b.extent], ...b.type.dims.map(printDim)].join(", ")}]`;
}
export function describeBuffer(s: Schedule, i: number): string {
  const b = s.buffers[i]!;
  return `#${i} ${b.kind} ${b.name} ${shapeOf(b)}`;
}
function bindingText(k: KernelIR, i: number): string {
  const b = k.bindings[i]!;
  return `#${b.buffer}${b.shift ? " at t+1" : ""}`;
}
const rowsText = (k: KernelIR, t: Type) => (t.batched ? (k.rows === "B" ? "B" : "T*B") : "1");
const dims = (t: Type) => t.dims.map(printDim).join(", ");

/** One line per step of a kernel's plan: what each launch does, with its GEMM shape or fused ops. */
function planLines(plan: KernelPlan): string[] {
  const k = plan.kernel;
  const g = k.graph;
  const name = (id: NodeId) => {
    const b = plan.leafBinding.get(id);
    return b === undefined ? `%${id}` : bindingText(k, b);
  };
  const out: string[] = [];
  for (const [i, st] of plan.steps.entries()) {
    // A loop fused into the GEMM before it runs in that GEMM's launch: printed under it.
    const epilogue = i > 0 && plan.fused.has(i - 1);
    if (st.kind === "outer") {
      const [M, K] = k.bindings[st.outer.binding]!.type.dims;
      const r = rowsText(k, g.node(st.outer.dy).type);
      out.push(
        `gemm      ${bindingText(k, st.outer.binding)} [${printDim(M!)}, ${printDim(K!)}] += ${name(st.outer.dy)}^T [${printDim(M!)}, ${r}] x ${name(st.outer.x)} [${r}, ${printDim(K!)}]`,
      );
      continue;
    }
    if (st.kind === "barrier") {
      const n = g.node(st.node);
      const r = rowsText(k, n.type);
      if (n.op === "gemm" || n.op === "gemmT") {
        const [M, K] = g.node(n.args[0]!).type.dims.map(printDim);
        const [inner, outer] = n.op === "gemm" ? [K, M] : [M, K];
        const w =
          n.op === "gemm"
            ? `${name(n.args[0]!)}^T [${inner}, ${outer}]`
            : `${name(n.args[0]!)} [${inner}, ${outer}]`;
        const next = plan.steps[i + 1];
        const G = next?.kind === "loop" && next.domain.dim ? gateCount(n.type.dims[0]!, next.domain.dim) : 0;
        const fused = !plan.fused.has(i)
          ? ""
          : G > 1
            ? `; with its loop in the same launch (the ${G} gates of a unit in one invocation):`
            : "; with its loop in the same launch:";
        out.push(`gemm      %${n.id} [${r}, ${outer}] = ${name(n.args[1]!)} [${r}, ${inner}] x ${w}${fused}`);
      } else
        out.push(
          `${n.op.padEnd(9)} %${n.id} [${r}${n.type.dims.length ? `, ${dims(n.type)}` : ""}] of ${n.args.map(name).join(", ")}`,
        );
      continue;
    }
    const counts = new Map<string, number>();
    for (const it of st.items)
      if (it.kind === "node") {
        const op = g.node(it.node).op;
        counts.set(op, (counts.get(op) ?? 0) + 1);
      }
    const ops = [...counts].map(([op, c]) => (c > 1 ? `${op} x${c}` : op)).join(", ") || "copy";
    const stores = st.items.flatMap((it) =>
      it.kind === "store" ? [`${it.store.accumulate ? "+=" : "->"} ${bindingText(k, it.store.binding)}`] : [],
    );
    const direct = st.items.flatMap((it) => {
      if (it.kind !== "node") return [];
      const stg = plan.storage.get(it.node)!;
      return stg.kind === "binding" ? [`-> ${bindingText(k, stg.index)}`] : [];
    });
    const rows = st.domain.batched ? (k.rows === "B" ? "B" : "T*B") : "1";
    const cols = st.domain.dim ? `, ${printDim(st.domain.dim)}` : "";
    out.push(
      `${epilogue ? "  fused   " : "fused    "} [${rows}${cols}] ${ops}${[...direct, ...stores].length ? `; ${[...direct, ...stores].join(", ")}` : ""}`,
    );
  }
  for (const [label, ops] of [
    ["premask", k.premask],
    ["postmask", k.postmask],
  ] as const)
    for (const m of ops)
      out.push(
        `${label.padEnd(9)} rows past their length: ${m.save !== undefined ? `${bindingText(k, m.save)} = ${bindingText(k, m.dst)}, then ` : ""}${bindingText(k, m.dst)} = ${m.src === undefined ? "0" : bindingText(k, m.src)}`,
      );
  return out;
}

/**
 * Launches of a kernel: its plan steps (masks apart), a GEMM with its epilogue one (WGSL's; `fused`
 * false: as the CPU targets run it, the GEMM and its loop one after the other).
 */
export function launches(k: KernelIR, fused = true): number {
  const plan = planKernel(k);
  return plan.steps.length - (fused ? plan.fused.size : 0);
}

/** Floats per batch row kept at each step for the backward pass: the tape and the states. */
export function savedPerStep(s: Schedule): Dim {
  let total = dimConst(0);
  for (const b of s.buffers)
    if (
      (b.kind === "tape" || b.kind === "state" || b.kind === "coef") &&
      b.extent !== "one" &&
      b.type.dims.length <= 1
    )
      total = dimAdd(total, b.type.dims[0] ?? dimConst(1));
  return total;
}

/** `cellc compile --emit schedule`: the whole-sequence program, readably. */
export function printSchedule(s: Schedule, opts: { graphs?: boolean; sources?: SourceMap } = {}): string {
  const sig = s.signature;
  const out = [`schedule ${sig.name}`, `  dims ${sig.dims.join(", ") || "(none)"}`];
  out.push("states (a scan when s' = a * s + b with a and b reading no state; otherwise the step loop)");
  if (!s.recurrences.length) out.push("  (none)");
  for (const r of s.recurrences) {
    const at = r.at && opts.sources ? sourceAt(r.at, opts.sources) : "";
    out.push(`  ${sig.states[r.state]!.name}: ${r.scan ? "scan" : "step loop"}: ${r.why}${at}`);
  }
  out.push("packs (stacked gate weights, laid out from the parameters once per parameter update)");
  if (!s.packs.length) out.push("  (none)");
  s.packs.forEach((p, i) => {
    const blocks = p.blocks
      .map((b) => `${sig.params[b.param]!.name}[:, ${printDim(b.c0)}:${printDim(b.c1)}]`)
      .join("; ");
    out.push(
      `  P${i} [${printDim(p.rows)}, ${printDim(p.cols)}] = [${blocks}]  (operand ${p.phase === "before" ? "hoisted: one GEMM over all steps" : "per step"})`,
    );
  });
  const ks = kernelsOf(s);
  const use = new Map<number, { w: Set<string>; r: Set<string> }>();
  for (const n of KERNEL_NAMES) {
    const k = ks[n];
    const written = new Set([...k.stores.map((x) => x.binding), ...k.outers.map((o) => o.binding)]);
    for (const m of [...k.premask, ...k.postmask]) {
      written.add(m.dst);
      if (m.save !== undefined) written.add(m.save);
    }
    k.bindings.forEach((b, i) => {
      const u = use.get(b.buffer) ?? { w: new Set(), r: new Set() };
      (written.has(i) ? u.w : u.r).add(n);
      use.set(b.buffer, u);
    });
  }
  const scanUse = (buffer: number, name: string, write: boolean) => {
    const u = use.get(buffer) ?? { w: new Set(), r: new Set() };
    if (write) u.w.add(name);
    u.r.add(name);
    use.set(buffer, u);
  };
  for (const sc of s.scans) {
    scanUse(sc.buffer, "scan", true);
    scanUse(sc.coef, "scan", false);
    scanUse(sc.grad, "rscan", true);
    scanUse(sc.coef, "rscan", false);
  }
  out.push("buffers (mem unless pmem; written by -> read by)");
  s.buffers.forEach((b, i) => {
    const u = use.get(i);
    const life = u ? `${[...u.w].join(", ") || "caller"} -> ${[...u.r].join(", ") || "caller"}` : "caller";
    out.push(`  ${describeBuffer(s, i).padEnd(40)} ${b.arena === "pmem" ? "pmem " : ""}${life}`);
  });
  const pure = s.forward.step.rows === "TB";
  for (const n of KERNEL_NAMES) {
    const k = ks[n];
    const plan = planKernel(k);
    if (n === "step" || n === "after") out.push(...scanLines(s, n === "step" ? "forward" : "backward"));
    const count = launches(k);
    out.push(`kernel ${n}: ${(pure ? WHEN_SCAN : WHEN)[n]}; ${count} launch${count === 1 ? "" : "es"}`);
    for (const line of planLines(plan)) out.push(`  ${line}`);
    if (opts.graphs) {
      const tags = new Map<number, string>();
      for (const node of k.graph.nodes)
        if (node.op === "leaf") {
          const b = plan.leafBinding.get(node.id)!;
          tags.set(
            node.id,
            `${describeBuffer(s, k.bindings[b]!.buffer)}${k.bindings[b]!.shift ? " at t+1" : ""}`,
          );
        }
      out.push("  graph");
      out.push(...printGraph(k.graph, opts.sources, tags).map((l) => `  ${l}`));
    }
  }
  out.push(
    `saved for the backward pass per step and batch row: ${printDim(savedPerStep(s))} floats (tape and states)`,
  );
  if (pure) {
    const all = KERNEL_NAMES.reduce((a, n) => a + launches(ks[n]), 0);
    out.push(
      `launches per step: none; per sequence, whatever T: ${all} kernel launches and ${s.scans.length} scan${s.scans.length === 1 ? "" : "s"} each way`,
    );
  } else
    out.push(
      `launches per step: forward ${launches(s.forward.step)}, backward ${launches(s.backward.loop)} (and ${s.forward.step.postmask.length} + ${s.backward.loop.premask.length + s.backward.loop.postmask.length} mask launches with sequence lengths)`,
    );
  return out.join("\n") + "\n";
}

/** The scans between the kernels, in the direction given. */
function scanLines(s: Schedule, dir: "forward" | "backward"): string[] {
  if (!s.scans.length) return [];
  const out = [
    dir === "forward"
      ? `scan forward: s[t+1] = a[t] * s[t] + s[t+1] (b, from before) for t = 0 .. T-1; in time chunks, parallel over rows and features`
      : `scan backward: g[t] = a[t] * g[t+1] + g[t] (from loop) for t = T-1 .. 0; in time chunks, parallel over rows and features`,
  ];
  for (const sc of s.scans) {
    const name = s.signature.states[sc.state]!.name;
    out.push(
      dir === "forward"
        ? `  ${name}: #${sc.buffer} at t+1 = #${sc.coef} * #${sc.buffer} + #${sc.buffer} at t+1; rows past their length keep #${sc.buffer}`
        : `  ${name}: #${sc.grad} = #${sc.coef} * #${sc.grad} at t+1 + #${sc.grad}; rows past their length carry #${sc.grad} at t+1 back, then it is 0`,
    );
  }
  return out;
}

/** ` (line:col, in: the source line)` of a span. */
function sourceAt(span: { file: string; start: number; end: number }, sources: SourceMap): string {
  const text = sources.get(span.file);
  if (text === undefined) return "";
  const { line, col } = lineCol(text, span.start);
  const { start, end } = lineBounds(text, span.start);
  return ` (${line}:${col}, in: ${text.slice(start, end).trim()})`;
}
