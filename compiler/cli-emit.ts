import { mkdirSync, writeFileSync } from "node:fs";
import { buildStepKernels } from "./autodiff/grad.js";
import { printGradIR } from "./autodiff/print.js";
import { emitModuleJs } from "./codegen/js.js";
import { describeBinding } from "./autodiff/kernel.js";
import { emitKernelWgsl, wgslManifest } from "./codegen/wgsl.js";
import type { CellIR } from "./ir/cell.js";
import type { Parsed } from "./cli-args.js";
import type { Io } from "./cli.js";
import { CliError } from "./cli.js";
import type { SourceMap } from "./diag/span.js";

/** The manifest that lets a program use the generated kernels without cellc. */
export function jsManifest(ir: CellIR, kernels: ReturnType<typeof buildStepKernels>) {
  return {
    cell: ir.name,
    dims: ir.dims,
    kernels: Object.fromEntries(
      [kernels.forward, kernels.backward].map((k) => [
        k.name,
        {
          factory: k.name,
          call: `${k.name}(B, [${ir.dims.join(", ")}]) returns step(bufs); bufs[i] is binding i`,
          bindings: k.bindings.map((b) => describeBinding(b)),
        },
      ]),
    ),
  };
}

export async function emitCompiled(ir: CellIR, args: Parsed, io: Io, sources: SourceMap): Promise<void> {
  if (args.options.target === "onnx" || args.options.target === "torch")
    return (await import("./export/cli-export.js")).emitExport(ir, args, io);
  const kernels = buildStepKernels(ir);
  const emit = args.options.emit;
  if (emit === "grad-ir") return io.out(printGradIR(ir.name, kernels, sources));
  if (emit === "js") return io.out(emitModuleJs([kernels.forward, kernels.backward], ir.dims));
  if (args.options.target === "js") {
    const dir = args.options.out!;
    try {
      mkdirSync(dir, { recursive: true });
      writeFileSync(`${dir}/${ir.name}.js`, emitModuleJs([kernels.forward, kernels.backward], ir.dims));
      writeFileSync(
        `${dir}/${ir.name}.manifest.json`,
        JSON.stringify(jsManifest(ir, kernels), null, 2) + "\n",
      );
    } catch (e) {
      throw new CliError(`cannot write to '${dir}': ${(e as Error).message}`);
    }
    io.out(`wrote ${dir}/${ir.name}.js and ${dir}/${ir.name}.manifest.json\n`);
    return;
  }
  const wgsl = {
    forward: emitKernelWgsl(kernels.forward, ir.dims),
    backward: emitKernelWgsl(kernels.backward, ir.dims),
  };
  if (emit === "wgsl") return io.out(wgsl.forward.code + "\n" + wgsl.backward.code);
  const dir = args.options.out!;
  try {
    mkdirSync(dir, { recursive: true });
    writeFileSync(`${dir}/${ir.name}.forward.wgsl`, wgsl.forward.code);
    writeFileSync(`${dir}/${ir.name}.backward.wgsl`, wgsl.backward.code);
    writeFileSync(`${dir}/${ir.name}.wgsl.json`, JSON.stringify(wgslManifest(ir, wgsl), null, 2) + "\n");
  } catch (e) {
    throw new CliError(`cannot write to '${dir}': ${(e as Error).message}`);
  }
  io.out(
    `wrote ${dir}/${ir.name}.forward.wgsl, ${dir}/${ir.name}.backward.wgsl and ${dir}/${ir.name}.wgsl.json\n`,
  );
}
