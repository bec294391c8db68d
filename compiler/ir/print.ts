import type { InitSpec } from "../check/types.js";
import type { SourceMap } from "../diag/span.js";
import { lineCol } from "../diag/span.js";
import type { CellIR } from "./cell.js";
import { classify } from "./classify.js";
import type { Graph, Node } from "./graph.js";
import { printDim, printType, storedShape } from "../../artifact/shape.js";

export function printInit(i: InitSpec): string {
  switch (i.kind) {
    case "const":
      return `= ${i.value}`;
    case "uniform":
      return i.lo === undefined ? "~ uniform" : `~ uniform(${i.lo}, ${i.hi})`;
    case "normal":
      return `~ normal(${i.mean}, ${i.std})`;
    case "xavier":
      return i.gain === 1 ? "~ xavier" : `~ xavier(${i.gain})`;
    case "orthogonal":
      return i.gain === 1 ? "~ orthogonal" : `~ orthogonal(${i.gain})`;
  }
}

export function printNode(n: Node): string {
  const args = n.args.map((a) => `%${a}`).join(", ");
  let body: string;
  switch (n.op) {
    case "leaf":
      body = `${n.attrs.role} ${n.attrs.name}`;
      break;
    case "const":
      body = `const ${n.attrs.value}`;
      break;
    case "dim":
      body = `dim ${printDim(n.attrs.dim!)}`;
      break;
    case "matvec":
      body = `matvec${n.attrs.transpose ? "T" : ""} ${args} cols [${printDim(n.attrs.c0!)}, ${printDim(n.attrs.c1!)})`;
      break;
    case "cols":
      body = `cols ${args} [${printDim(n.attrs.start!)}, +${printDim(n.attrs.len!)})`;
      break;
    case "slice":
      body = `slice ${args} from ${printDim(n.attrs.start!)} len ${printDim(n.attrs.len!)}`;
      break;
    default:
      body = `${n.op} ${args}`;
  }
  return `%${n.id} = ${body} : [${storedShape(n.type).join(", ")}]`;
}

export function printGraph(g: Graph, sources?: SourceMap, tags?: ReadonlyMap<number, string>): string[] {
  return g.nodes.map((n) => {
    let line = printNode(n);
    const tag = tags?.get(n.id);
    if (tag) line = line.padEnd(56) + ` ${tag}`;
    if (n.span && sources) {
      const text = sources.get(n.span.file);
      if (text !== undefined) {
        const { line: l, col } = lineCol(text, n.span.start);
        line = line.padEnd(64) + ` @${l}:${col}`;
      }
    }
    return "  " + line;
  });
}

/** The stable text form of a cell's IR, with each node's placement in the time loop. */
export function printCell(c: CellIR, sources?: SourceMap): string {
  const cls = classify(c);
  const out = [`cell ${c.name}`];
  out.push(`  dims ${c.dims.join(", ") || "(none)"}`);
  for (const i of c.inputs) out.push(`  input ${i.name} ${printType(i.type)}`);
  for (const s of c.states) out.push(`  state ${s.name} ${printType(s.type)} = ${s.init}`);
  for (const p of c.params) out.push(`  param ${p.name} ${printType(p.type)} ${printInit(p.init)}`);
  out.push(
    `  class: ${cls.kind} (matvecs: ${cls.counts.hoist} hoistable, ${cls.counts.recur} on previous state, ${cls.counts.split} split inside step)`,
  );
  const tags = new Map<number, string>();
  for (const [id, p] of cls.placement) if (p !== "step") tags.set(id, p);
  out.push("graph");
  out.push(...printGraph(c.graph, sources, tags));
  for (const o of c.outputs) out.push(`output ${o.name} = %${o.node}`);
  for (const n of c.next) out.push(`next ${n.state} = %${n.node}`);
  return out.join("\n") + "\n";
}
