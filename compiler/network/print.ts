// `cellc compile FILE --emit network`: a network artifact as people read it: its parts with their sizes,
// every parameter, and the loss's and optimiser's kernels (the cell's and the readout's print with --emit
// schedule, js, wgsl).
import type { NetworkArtifact } from "../../artifact/network.js";
import { printDim } from "../../artifact/shape.js";
import { printInit as init } from "../ir/print.js";

const sizes = (s: Readonly<Record<string, number>>) =>
  Object.entries(s)
    .map(([k, v]) => `${k} = ${v}`)
    .join(", ");

export function printNetwork(a: NetworkArtifact): string {
  const lines: string[] = [];
  const cell = a.cell.signature;
  const out = cell.outputs[0]!;
  const count = a.params.reduce((n, p) => n + p.shape.reduce((x, y) => x * y, 1), 0);
  lines.push(
    `network ${a.name}${a.model !== undefined ? " (a declared model)" : ` (cell '${cell.name}' in its data's default model)`}`,
  );
  lines.push(
    `  input     ${a.input.name}: ${a.input.kind === "tokens" ? `token ids of ${a.input.size} symbols` : `${a.input.size} real features`} per step`,
  );
  if (a.embed)
    lines.push(
      `  embedding ${a.embed.param} [${a.embed.V}, ${a.embed.D}]: row tokens[t, b] is the cell's input`,
    );
  lines.push(
    `  cell      ${cell.name}, ${a.layers} layer${a.layers > 1 ? "s" : ""}, ${a.bidirectional ? "both directions" : "forward"}`,
  );
  a.sizes.forEach((s, l) => lines.push(`    layer ${l}: ${sizes(s)}`));
  const r = a.readout.signature;
  lines.push(
    `  readout   on ${a.on === "last" ? "the last valid step" : "every step"}: ${r.outputs[0]!.name} [${a.outputSize}] from ${out.name} [${a.features}]${a.bidirectional ? " (both directions)" : ""}; ${sizes(a.readoutSizes)}`,
  );
  lines.push(`  loss      ${a.loss.kind}${a.classes ? ` over ${a.classes.length} named classes` : ""}`);
  lines.push(`  optimiser ${a.optimizer.kind}, with global gradient-norm clipping when asked for`);
  lines.push(`parameters (${count} values), as params.safetensors names them:`);
  const width = Math.max(...a.params.map((p) => p.name.length));
  const shape = (p: { shape: readonly number[] }) => `[${p.shape.join(", ")}]`;
  const shapeWidth = Math.max(...a.params.map((p) => shape(p).length));
  for (const p of a.params) {
    const where = p.part === "cell" ? `cell, layer ${p.layer}${p.direction ? ", reverse" : ""}` : p.part;
    lines.push(`  ${p.name.padEnd(width)}  ${shape(p).padEnd(shapeWidth)}  ${where}  ${init(p.init)}`);
  }
  lines.push(`kernels:`);
  lines.push(
    `  cell '${cell.name}' and readout: ${kernelTargets(a)} (print them with --emit schedule|js|wgsl|wat)`,
  );
  lines.push(`  readout input ${r.inputs[0]!.name} [${r.inputs[0]!.type.dims.map(printDim).join(", ")}]`);
  for (const [what, k] of [
    ["loss", a.loss],
    ["optimiser", a.optimizer],
  ] as const) {
    lines.push(`--- ${what} (JS) ---`, k.js.trimEnd(), `--- ${what} (WGSL) ---`, k.wgsl.trimEnd());
  }
  lines.push(`--- gradient norm (WGSL) ---`, a.optimizer.normWgsl.trimEnd());
  return lines.join("\n") + "\n";
}

function kernelTargets(a: NetworkArtifact): string {
  const t: string[] = [];
  if (a.cell.js !== undefined) t.push("JS");
  if (a.cell.wasm !== undefined) t.push("WebAssembly");
  if (a.cell.wgsl !== undefined) t.push("WGSL");
  return t.join(", ");
}
