import { mkdirSync, writeFileSync } from "node:fs";
import { emitScheduleJs } from "../compiler/codegen/js.js";
import { emitScheduleWgsl, wgslManifest } from "../compiler/codegen/wgsl.js";
import type { CellIR } from "../compiler/ir/cell.js";
import type { Parsed } from "./args.js";
import type { Io } from "./io.js";
import { CliError } from "./io.js";
import { artifactOf } from "../compiler/schedule/artifact.js";
import { buildSchedule } from "../compiler/schedule/build.js";
import { printSchedule } from "../compiler/schedule/print.js";
import { KERNEL_NAMES } from "../compiler/schedule/types.js";
import { SCAN_WGSL } from "../runtime/webgpu/scan.js";

/** `--target js|wgsl --out DIR`: the compiled artifact (`--emit` prints through stage.ts). */
export async function emitCompiled(ir: CellIR, args: Parsed, io: Io): Promise<void> {
  if (args.options.target === "onnx" || args.options.target === "torch")
    return (await import("./export.js")).emitExport(ir, args, io);
  const schedule = buildSchedule(ir);
  const dir = args.options.out!;
  const target = args.options.target as "js" | "wgsl";
  const wgsl = target === "wgsl" ? emitScheduleWgsl(schedule) : undefined;
  const artifact = artifactOf(schedule, target === "js" ? { js: emitScheduleJs(schedule) } : { wgsl });
  const files: [string, string][] = [[`${ir.name}.artifact.json`, JSON.stringify(artifact, null, 1) + "\n"]];
  if (target === "js") files.push([`${ir.name}.js`, artifact.js!]);
  else {
    for (const k of KERNEL_NAMES) {
      files.push([`${ir.name}.${k}.wgsl`, wgsl![k].code]);
      const sub = wgsl![k].codeSubgroups;
      if (sub !== undefined) files.push([`${ir.name}.${k}.subgroups.wgsl`, sub]);
    }
    if (schedule.scans.length) files.push([`${ir.name}.scan.wgsl`, SCAN_WGSL]);
    files.push([`${ir.name}.wgsl.json`, JSON.stringify(wgslManifest(schedule, wgsl!), null, 2) + "\n"]);
  }
  files.push([`${ir.name}.schedule.txt`, printSchedule(schedule)]);
  try {
    mkdirSync(dir, { recursive: true });
    for (const [name, text] of files) writeFileSync(`${dir}/${name}`, text);
  } catch (e) {
    throw new CliError(`cannot write to '${dir}': ${(e as Error).message}`);
  }
  io.out(`wrote ${files.map(([n]) => `${dir}/${n}`).join(", ")}\n`);
}
