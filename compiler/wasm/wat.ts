// The WebAssembly text of a cell's kernels (`cellc compile --emit wat`, the playground's wasm tab). The
// binary is ours (writer.ts); the text is printed by wabt, loaded only here (it is several MB).
import { KERNEL_NAMES, type KernelName } from "../schedule/types.js";
import { printDim } from "../../artifact/shape.js";
import { fromBase64, type WasmOperand, type WasmStep, type WasmTarget } from "../../artifact/wasm.js";
import { buildKernelModule } from "../../kernels/library.js";

interface Wabt {
  readWasm(
    bytes: Uint8Array,
    opts: { readDebugNames?: boolean; simd?: boolean; threads?: boolean },
  ): { generateNames(): void; applyNames(): void; toText(o: { foldExprs?: boolean; inlineExport?: boolean }): string; destroy(): void }; // prettier-ignore
}

let wabt: Promise<Wabt> | undefined;
async function loadWabt(): Promise<Wabt> {
  wabt ??= import("wabt").then((m) => (m.default as unknown as () => Promise<Wabt>)());
  return wabt;
}

/** A module's text; the features our modules use (SIMD128, a shared memory) switched on. */
export async function moduleText(bytes: Uint8Array): Promise<string> {
  const m = (await loadWabt()).readWasm(bytes, { readDebugNames: true, simd: true, threads: true });
  try {
    m.generateNames();
    m.applyNames();
    return m.toText({ foldExprs: false, inlineExport: true });
  } finally {
    m.destroy();
  }
}

const operand = (o: WasmOperand) => `slot ${o.slot} + ${printDim(o.col)} (ld ${printDim(o.ld)})`;
function stepText(s: WasmStep): string {
  const rows = s.rows === "all" ? "all rows" : "one row";
  if (s.kind === "call")
    return `call ${s.fn} over ${rows}${s.split ? `, split across threads${s.cols ? " by columns" : ""}` : ""}`;
  const form = s.kind === "tn" ? "tn (+=)" : s.form;
  return `gemm_${form} ${operand(s.out)} <- ${operand(s.left)} x ${operand(s.right)}, M ${printDim(s.M)}, K ${printDim(s.K)}, ${rows}`;
}

/**
 * The cell's module with, before it, each kernel's steps (the GEMM steps run the shared GEMM module);
 * `withGemms` adds the text of that module too (it is the same for every cell).
 */
export async function printWat(target: WasmTarget, withGemms = false): Promise<string> {
  const lines = [";; the elementwise kernels of this cell's schedule; a step list per kernel:"];
  for (const k of KERNEL_NAMES as readonly KernelName[]) {
    const kernel = target.kernels[k];
    if ("fallback" in kernel) lines.push(`;; kernel ${k}: runs as JS (${kernel.fallback})`);
    else {
      lines.push(
        `;; kernel ${k}: ${kernel.steps.length} step(s), ${kernel.scratch.length} scratch region(s)`,
      );
      for (const s of kernel.steps) lines.push(`;;   ${stepText(s)}`);
    }
  }
  let text = lines.join("\n") + "\n" + (await moduleText(fromBase64(target.module)));
  if (withGemms)
    text +=
      "\n;; the GEMM and vector-math module shared by every cell (where the engine has relaxed SIMD, the\n" +
      ";; runtime builds it with f32x4.relaxed_madd in place of each f32x4.mul + f32x4.add pair)\n" +
      (await moduleText(buildKernelModule().bytes));
  return text;
}
