// `cellc predict DIR --inputs X.safetensors --out Y.safetensors`: applies a run folder's trained network
// (embedding, layers, directions, readout) to new inputs. See the README's "Use and export it".
import type { Parsed } from "./args.js";
import { UsageError } from "./args.js";
import { writeFileAtomic } from "./atomic.js";
import { CliError, type Io } from "./io.js";
import { loadRun } from "./rundir.js";
import { cliBackend, readTensors } from "./run.js";
import { writeSafetensors } from "../runtime/safetensors.js";
import type { Tensor } from "../runtime/tensor.js";
import { Network } from "../workbench/train/network.js";
import { predictOutputs } from "../workbench/train/predict.js";

export async function predictCommand(args: Parsed, io: Io): Promise<number> {
  for (const need of ["inputs", "out"])
    if (!args.options[need]) throw new UsageError(`predict needs --${need} FILE`);
  const dir = args.files[0]!;
  const { artifact, params } = loadRun(dir);
  const file = readTensors(args.options.inputs!, "inputs");
  const name = artifact.input.name;
  let x: Tensor | undefined;
  let seqLens: Int32Array | undefined;
  for (const [n, t] of file) {
    if (n === "seq_lens") {
      if (t.dtype !== "i32" || t.shape.length !== 1)
        throw new CliError(
          `seq_lens must be an integer tensor (I32 or I64) of shape [B], got ${t.stored ?? t.dtype.toUpperCase()} [${t.shape.join(", ")}]`,
        );
      seqLens = t.data as Int32Array;
    } else if (n === name) x = t;
    else if (n !== "target")
      throw new CliError(
        `unexpected tensor '${n}' in inputs '${args.options.inputs}': '${artifact.name}' takes '${name}' ${artifact.input.kind === "tokens" ? "(token ids [T, B])" : `([T, B, ${artifact.input.size}])`} and 'seq_lens' [B]`,
      );
  }
  if (!x)
    throw new CliError(
      `inputs '${args.options.inputs}' have no tensor '${name}', the input of '${artifact.name}'`,
    );
  const dtype = args.flags.has("f64") ? "f64" : "f32";
  const backend = await cliBackend(args);
  const net = new Network(artifact, { backend, dtype, params, onDevice: false });
  const p = await predictOutputs(net, new Map([[name, x]]), seqLens);
  const out = new Map<string, Tensor>([["y", p.y]]);
  if (p.probs) out.set("probs", p.probs);
  if (p.argmax) out.set("argmax", p.argmax);
  const metadata = new Map<string, string>();
  if (artifact.classes) metadata.set("classes", JSON.stringify(artifact.classes));
  const bad = [...out].filter(([, t]) => !t.data.every(Number.isFinite)).map(([n]) => n);
  if (bad.length) {
    metadata.set("nonfinite", bad.join(","));
    io.err(`cellc: warning: non-finite values (NaN or Inf) in ${bad.join(", ")}\n`);
  }
  writeFileAtomic(args.options.out!, writeSafetensors(out, metadata));
  const listed = [...out].map(([n, t]) => `${n} [${t.shape.join(", ")}]`);
  io.out(`wrote ${args.options.out} ('${artifact.name}' on ${backend.name}): ${listed.join(", ")}\n`);
  return 0;
}
