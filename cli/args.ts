import { OPTIM_NAMES } from "../artifact/network.js";
import { CellcError } from "../artifact/tensor.js";
import { BACKEND_NAMES } from "../runtime/backends.js";
export class UsageError extends Error {}

export type Command =
  | "check"
  | "compile"
  | "run"
  | "predict"
  | "import"
  | "init"
  | "train"
  | "sample"
  | "compare"
  | "gradflow"
  | "lsp"
  | "fmt"
  | "help"
  | "version";

interface CommandSpec {
  readonly synopsis: string;
  readonly files: [number, number]; // min, max positional arguments
  readonly values: readonly string[]; // options that take a value
  readonly flags: readonly string[]; // options without a value
}

export const COMMANDS: Readonly<Record<Exclude<Command, "help" | "version">, CommandSpec>> = {
  check: { synopsis: "check FILE.cell[:NAME]...", files: [1, Infinity], values: [], flags: [] },
  compile: {
    synopsis:
      "compile FILE.cell[:NAME] [--cell NAME | --model NAME] [--emit ast|ir|schedule|grad-ir|js|wgsl|wat | --emit network [--task NAME [--T N]] [--optim NAME]] [--target js|wgsl --out DIR] [--target onnx|torch --out FILE [--params P.safetensors | --dims D=8,H=16] [--layers N] [--bidirectional] [--onnx-inputs optional|required|none]] | compile RUN_DIR --target onnx|torch --out FILE [--onnx-inputs optional|required|none]",
    files: [1, 1],
    values: [
      "cell",
      "model",
      "emit",
      "target",
      "out",
      "params",
      "dims",
      "layers",
      "task",
      "T",
      "optim",
      "onnx-inputs",
    ],
    flags: ["bidirectional"],
  },
  run: {
    synopsis:
      "run FILE.cell[:NAME] [--cell NAME] --params P.safetensors --inputs X.safetensors --out OUT.safetensors [--grad] [--backend wasm|js|webgpu] [--threads N|all] [--precision f32|f16] [--f64] [--layers N] [--bidirectional] | run RUN_DIR --inputs X.safetensors --out OUT.safetensors [...] (the trained network's cell alone)",
    files: [1, 1],
    values: ["cell", "params", "inputs", "out", "backend", "precision", "layers", "threads"],
    flags: ["grad", "f64", "bidirectional"],
  },
  predict: {
    synopsis:
      "predict DIR --inputs X.safetensors --out Y.safetensors [--backend wasm|js|webgpu] [--threads N|all] [--f64]",
    files: [1, 1],
    values: ["inputs", "out", "backend", "threads"],
    flags: ["f64"],
  },
  import: {
    synopsis:
      "import torch STATE.safetensors --cell F.cell[:NAME] [--name CELL] --out P.safetensors [--layers N] [--bidirectional]",
    files: [2, 2],
    values: ["cell", "name", "out", "layers"],
    flags: ["bidirectional"],
  },
  init: {
    synopsis:
      "init FILE.cell[:NAME] [--cell NAME] --dims D=16,H=32 [--seed S] [--layers N] [--bidirectional] --out P.safetensors",
    files: [1, 1],
    values: ["cell", "dims", "seed", "layers", "out"],
    flags: ["bidirectional"],
  },
  train: {
    synopsis:
      "train FILE.cell[:NAME] [--cell NAME] [--model NAME] (--task NAME [--T N] | --data TRAIN.safetensors [--eval EVAL.safetensors]) [--solved-below X] [--steps N] [--batch B] [--lr X] [--optim sgd|momentum|adam|adamw] [--clip NORM] [--warmup N] [--decay none|linear|cosine] [--tbptt K] [--eval-every N] [--seed S] [--init P.safetensors] [--no-shuffle] [--backend wasm|js|webgpu] [--precision f32|f16] [--threads N|all] [--dims H=32] [--layers N] [--bidirectional] [--out DIR] [--quiet] | train --resume DIR [--steps N]",
    files: [0, 1],
    values: [
      "cell",
      "model",
      "task",
      "T",
      "data",
      "eval",
      "solved-below",
      "steps",
      "batch",
      "lr",
      "optim",
      "clip",
      "warmup",
      "decay",
      "tbptt",
      "eval-every",
      "seed",
      "init",
      "resume",
      "backend",
      "precision",
      "threads",
      "dims",
      "out",
      "weight-decay",
      "momentum",
      "layers",
    ],
    flags: ["no-shuffle", "quiet", "bidirectional"],
  },
  sample: {
    synopsis: "sample DIR [--length N] [--temperature X] [--seed S] [--prime TEXT]",
    files: [1, 1],
    values: ["length", "temperature", "seed", "prime"],
    flags: [],
  },
  compare: {
    synopsis:
      "compare A.cell|NAME B.cell[:NAME]... (--task NAME [--T N] | --data TRAIN.safetensors [--eval EVAL.safetensors]) [--solved-below X] [--steps N] [--seeds K] [--batch B] [--lr X] [--optim NAME] [--decay none|linear|cosine] [--dims H=32] [--layers N] [--backend wasm|js] [--threads N|all] --out DIR",
    files: [1, Infinity],
    values: [
      "task",
      "T",
      "data",
      "eval",
      "solved-below",
      "steps",
      "seeds",
      "batch",
      "lr",
      "optim",
      "decay",
      "clip",
      "eval-every",
      "dims",
      "backend",
      "threads",
      "layers",
      "out",
    ],
    flags: ["quiet"],
  },
  gradflow: {
    synopsis:
      "gradflow A.cell B.cell[:NAME]... [--task adding [--T N] | --data TRAIN.safetensors [--eval EVAL.safetensors]] [--steps N] [--dims H=32] [--seed S] [--backend wasm|js] [--threads N|all] --out DIR",
    files: [1, Infinity],
    values: [
      "task",
      "T",
      "data",
      "eval",
      "steps",
      "batch",
      "lr",
      "optim",
      "dims",
      "seed",
      "backend",
      "threads",
      "out",
    ],
    flags: ["quiet"],
  },
  lsp: { synopsis: "lsp [--stdio]", files: [0, 0], values: [], flags: ["stdio"] },
  fmt: { synopsis: "fmt [--check] FILE.cell|DIR|-...", files: [1, Infinity], values: [], flags: ["check"] },
};

export interface Parsed {
  readonly command: Command;
  readonly files: string[];
  readonly options: Record<string, string | undefined>;
  readonly flags: Set<string>;
}

const CHOICES: Record<string, readonly string[]> = {
  emit: ["ast", "ir", "schedule", "grad-ir", "js", "wgsl", "wat", "network"],
  target: ["js", "wgsl", "onnx", "torch"],
  backend: BACKEND_NAMES,
  precision: ["f32", "f16"],
  optim: OPTIM_NAMES,
  decay: ["none", "linear", "cosine"],
  "onnx-inputs": ["optional", "required", "none"],
};

export function parseArgs(argv: readonly string[]): Parsed {
  const [cmd, ...rest] = argv;
  if (cmd === undefined || cmd === "help" || cmd === "--help" || cmd === "-h")
    return { command: "help", files: [], options: {}, flags: new Set() };
  if (cmd === "--version" || cmd === "-V" || cmd === "version")
    return { command: "version", files: [], options: {}, flags: new Set() };
  if (!Object.hasOwn(COMMANDS, cmd)) throw new UsageError(`unknown command '${cmd}'`);
  // `cellc CMD --help`: that command's usage (the command as the one file of a "help").
  if (rest.includes("--help") || rest.includes("-h"))
    return { command: "help", files: [cmd], options: {}, flags: new Set() };
  const spec = COMMANDS[cmd as keyof typeof COMMANDS];
  const files: string[] = [];
  const options: Record<string, string> = {};
  const flags = new Set<string>();
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i]!;
    if (a.startsWith("--")) {
      const eq = a.indexOf("=");
      const name = a.slice(2, eq < 0 ? undefined : eq);
      if (spec.flags.includes(name)) {
        if (eq >= 0) throw new UsageError(`--${name} takes no value`);
        flags.add(name);
      } else if (spec.values.includes(name)) {
        const v = eq >= 0 ? a.slice(eq + 1) : rest[++i];
        if (v === undefined || v === "") throw new UsageError(`--${name} needs a value`);
        const choices = CHOICES[name];
        if (choices && !choices.includes(v))
          throw new UsageError(`--${name} must be one of ${choices.join(", ")}, got '${v}'`);
        options[name] = v;
      } else throw new UsageError(`unknown option --${name} for '${cmd}'`);
    } else files.push(a);
  }
  if (files.length < spec.files[0])
    throw new UsageError(`'${cmd}' needs ${cmd === "sample" ? "a training output folder" : "a .cell file"}`);
  if (files.length > spec.files[1])
    throw new UsageError(
      spec.files[1] === 0
        ? `'${cmd}' takes no file, got '${files[0]}'`
        : `'${cmd}' takes one .cell file, got ${files.length}`,
    );
  if (options.target && !options.out) throw new UsageError("--target needs --out DIR");
  if (cmd === "compile" && options.emit && options.target)
    throw new UsageError(
      "--emit prints to standard output and --target writes files to --out DIR: give one or the other",
    );
  if (cmd === "compile" && options.out && !options.target)
    throw new UsageError("--out DIR goes with --target js|wgsl (--emit prints to standard output)");
  return { command: cmd as Command, files, options, flags };
}

/** `--dims D=16,H=32`. */
export function parseDims(text: string | undefined): Record<string, number> {
  const dims = Object.create(null) as Record<string, number>;
  if (text === undefined) return dims;
  for (const part of text.split(",")) {
    const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(\d+)\s*$/.exec(part);
    if (!m || Number(m[2]) < 1 || Number(m[2]) > 1 << 24)
      throw new CellcError(`--dims takes NAME=SIZE pairs separated by commas (D=16,H=32), got '${part}'`);
    dims[m[1]!] = Number(m[2]);
  }
  return dims;
}
