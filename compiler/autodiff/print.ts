import { printGraph } from "../ir/print.js";
import { printDim, storedShape } from "../ir/shape.js";
import type { SourceMap } from "../diag/span.js";
import type { KernelIR } from "./kernel.js";
import type { StepKernels } from "./grad.js";

export function printKernel(k: KernelIR, sources?: SourceMap): string {
  const out = [`kernel ${k.name}`];
  k.bindings.forEach((b, i) => out.push(`  @${i} ${b.role} ${b.name} [${storedShape(b.type).join(", ")}]`));
  out.push("graph");
  out.push(...printGraph(k.graph, sources));
  for (const s of k.stores) out.push(`${s.accumulate ? "accumulate" : "store"} @${s.binding} = %${s.node}`);
  for (const o of k.outers)
    out.push(
      `accumulate @${o.binding}[:, ${printDim(o.c0)}:${printDim(o.c1)}] += outer(%${o.dy}, %${o.x}) summed over B`,
    );
  return out.join("\n") + "\n";
}

/** `--emit grad-ir`: the backward step, and which forward values it reads. */
export function printGradIR(name: string, kernels: StepKernels, sources?: SourceMap): string {
  const saved = kernels.saved.map((id, i) => `s${i} = forward %${id}`).join(", ") || "(none)";
  return `cell ${name}\n  saved by the forward step: ${saved}\n` + printKernel(kernels.backward, sources);
}
