import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { readSafetensors, tensor, writeSafetensors, type Tensor } from "../../api/index.js";
import { loadNetwork } from "../../cli/rundir.js";
import { mismatches } from "../compare.js";
import { noise } from "./cases.js";
import { hasTorch, PYTHON } from "./python.js";

/**
 * `cellc compile RUN --target onnx|torch`: a trained network exported whole (embedding, cell in layers and
 * directions, readout) must give the `y` that cellc's own network gives (`loadNetwork(RUN).predict`), in ONNX
 * Runtime and in PyTorch, with full lengths and with sequence lengths. The runs train for a few steps: the
 * export's correctness does not need a trained network, only a run folder.
 */
type Ort = typeof import("onnxruntime-node");
let ort: Ort | undefined;
try {
  ort = await import("onnxruntime-node");
} catch (e) {
  if (process.env.CI) throw new Error(`onnxruntime-node is required in CI: ${(e as Error).message}`);
}

const tmp = mkdtempSync(join(tmpdir(), "cellc-network-export-"));
const cellc = (...args: string[]) =>
  spawnSync(process.execPath, ["bin/cellc.js", ...args], { encoding: "utf8" });

interface Run {
  readonly name: string;
  readonly train: readonly string[];
  /** The ONNX operator the cell must become. */
  readonly op: string;
}
const RUNS: readonly Run[] = [
  {
    name: "gru-adding",
    train: ["examples/cells/gru.cell", "--task", "adding", "--T", "30", "--dims", "H=8"],
    op: "GRU",
  },
  {
    name: "gru-2-layers-bidirectional",
    train: ["examples/cells/gru.cell", "--task", "adding", "--T", "6", "--dims", "H=5"],
    op: "GRU",
  },
  {
    name: "bigru-tagger-copy",
    train: ["examples/models/bigru.cell", "--task", "copy", "--T", "3", "--dims", "H=6,K=5"],
    op: "GRU",
  },
  {
    name: "tagger-chars",
    train: ["examples/models/tagger.cell", "--task", "chars", "--T", "8", "--dims", "D=6,H=7"],
    op: "LSTM",
  },
  {
    name: "mgu-copy-scan",
    train: ["examples/cells/mgu.cell", "--task", "copy", "--T", "3", "--dims", "H=6", "--bidirectional"],
    op: "Scan",
  },
];
const EXTRA: Record<string, string[]> = {
  "gru-2-layers-bidirectional": ["--layers", "2", "--bidirectional"],
};
const T = 7;
const B = 4;
const LENS = [7, 3, 0, 5];

interface Prepared {
  readonly dir: string;
  readonly x: Tensor;
  readonly y: Tensor;
  readonly yLens: Tensor;
  readonly onnxOptional: Uint8Array;
  readonly onnxRequired: Uint8Array;
  readonly stdout: string;
  readonly torchOut: string;
  readonly module: string;
}
const prepared = new Map<string, Prepared>();
const same = (got: Tensor, want: Tensor) =>
  mismatches(new Map([["y", got]]), new Map([["y", want]]), 1e-5, 1e-5);

beforeAll(async () => {
  const jobs: object[] = [];
  for (const run of RUNS) {
    const dir = join(tmp, run.name);
    const t = cellc(
      "train",
      ...run.train,
      ...(EXTRA[run.name] ?? []),
      "--steps",
      "2",
      "--quiet",
      "--out",
      dir,
    );
    if (t.status !== 0) throw new Error(`${run.name}: cellc train: ${t.stderr}`);
    const net = loadNetwork(dir);
    const a = net.artifact;
    const r = noise(17);
    const x = a.embed
      ? tensor(
          "i32",
          [T, B],
          Int32Array.from({ length: T * B }, () => Math.floor(((r() + 1) / 2) * a.embed!.V)),
        )
      : tensor(
          "f32",
          [T, B, a.input.size],
          Float32Array.from({ length: T * B * a.input.size }, () => r()),
        );
    const inputs = new Map([[a.input.name, x]]);
    const y = await net.predict(inputs);
    const yLens = await net.predict(inputs, Int32Array.from(LENS));
    // The lengths matter: a y that ignored them would not pass for both.
    if (!same(y, yLens).length) throw new Error(`${run.name}: y does not depend on seq_lens`);
    const out = (kind: string) => join(dir, `exported.${kind}`);
    const o = cellc("compile", dir, "--target", "onnx", "--out", out("onnx"));
    if (o.status !== 0) throw new Error(`${run.name}: cellc compile --target onnx: ${o.stderr}`);
    const o2 = cellc(
      "compile",
      dir,
      "--target",
      "onnx",
      "--onnx-inputs",
      "required",
      "--out",
      out("req.onnx"),
    );
    if (o2.status !== 0) throw new Error(`${run.name}: --onnx-inputs required: ${o2.stderr}`);
    const p = cellc("compile", dir, "--target", "torch", "--out", out("py"));
    if (p.status !== 0) throw new Error(`${run.name}: cellc compile --target torch: ${p.stderr}`);
    const inFile = join(dir, "inputs.safetensors");
    writeFileSync(
      inFile,
      writeSafetensors(
        new Map([
          ["x", x],
          ["seq_lens", tensor("i32", [B], LENS)],
        ]),
      ),
    );
    const torchOut = join(dir, "torch.out.safetensors");
    jobs.push({ module: out("py"), params: join(dir, "params.safetensors"), inputs: inFile, out: torchOut });
    prepared.set(run.name, {
      dir,
      x,
      y,
      yLens,
      onnxOptional: readFileSync(out("onnx")),
      onnxRequired: readFileSync(out("req.onnx")),
      stdout: o.stdout,
      torchOut,
      module: out("py"),
    });
  }
  if (hasTorch) {
    writeFileSync(join(tmp, "jobs.json"), JSON.stringify(jobs));
    execFileSync(PYTHON, ["test/export/network_driver.py", join(tmp, "jobs.json")], { stdio: "inherit" });
  }
}, 600_000);

describe.skipIf(!ort)("a trained network in ONNX Runtime", () => {
  const feedX = (x: Tensor) =>
    x.dtype === "i32"
      ? new ort!.Tensor(
          "int64",
          BigInt64Array.from(x.data, (v) => BigInt(v)),
          x.shape,
        )
      : new ort!.Tensor("float32", x.data as Float32Array, x.shape);
  for (const run of RUNS)
    it(run.name, async () => {
      const p = prepared.get(run.name)!;
      expect(p.stdout).toContain(run.op === "Scan" ? "a Scan over its step" : `ONNX ${run.op}`);
      const opts = { logSeverityLevel: 3 as const };
      const s = await ort!.InferenceSession.create(p.onnxOptional, opts);
      expect(s.inputNames).toEqual(["X"]);
      expect(s.outputNames[0]).toBe("y");
      const y = (await s.run({ X: feedX(p.x) })).y!;
      expect(same(tensor("f32", [...y.dims], y.data as Float32Array), p.y)).toEqual([]);
      const req = await ort!.InferenceSession.create(p.onnxRequired, opts);
      expect(req.inputNames).toEqual(["X", "sequence_lens"]);
      const lens = new ort!.Tensor("int32", Int32Array.from(LENS), [B]);
      const yl = (await req.run({ X: feedX(p.x), sequence_lens: lens })).y!;
      expect(same(tensor("f32", [...yl.dims], yl.data as Float32Array), p.yLens)).toEqual([]);
    });
});

describe.skipIf(!hasTorch)("a trained network in PyTorch (no safetensors package)", () => {
  for (const run of RUNS)
    it(run.name, () => {
      const p = prepared.get(run.name)!;
      const got = readSafetensors(readFileSync(p.torchOut));
      expect(same(got.get("y")!, p.y)).toEqual([]);
      expect(same(got.get("y.lens")!, p.yLens)).toEqual([]);
    });
});

describe("exporting a run folder", () => {
  it("checks the source it keeps against its digest", () => {
    const p = prepared.get("gru-adding")!;
    const file = join(p.dir, "network.json");
    const net = JSON.parse(readFileSync(file, "utf8")) as { source: { files: Record<string, string> } };
    const [path] = Object.keys(net.source.files);
    net.source.files[path!] = net.source.files[path!]!.replace("tanh", "sigmoid");
    const bad = join(tmp, "edited");
    execFileSync("cp", ["-r", p.dir, bad]);
    writeFileSync(join(bad, "network.json"), JSON.stringify(net));
    const r = cellc("compile", bad, "--target", "onnx", "--out", join(bad, "m.onnx"));
    expect(r.status).toBe(1);
    expect(r.stderr).toContain("does not match its digest");
  });

  it("refuses options the trained network fixes", () => {
    const p = prepared.get("gru-adding")!;
    const r = cellc("compile", p.dir, "--target", "onnx", "--layers", "2", "--out", join(tmp, "x.onnx"));
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(
      "cellc: error: --layers does not go with a run folder: the trained network fixes it\n",
    );
    const js = cellc("compile", p.dir, "--target", "js", "--out", join(tmp, "js"));
    expect(js.stderr).toBe(
      "cellc: error: a run folder exports with --target onnx or --target torch, not 'js'\n",
    );
  });

  it("cellc run on a run folder runs the cell alone, and says so", () => {
    const p = prepared.get("gru-2-layers-bidirectional")!;
    const out = join(tmp, "run.out.safetensors");
    const r = cellc(
      "run",
      p.dir,
      "--inputs",
      join(p.dir, "inputs.safetensors"),
      "--out",
      out,
      "--backend",
      "js",
    );
    expect(r.stderr).toBe(
      `cellc: note: '${p.dir}' holds the trained network 'gru': this runs its cell 'gru' (2 layer(s), bidirectional) on the inputs as given; its readout is not run\n`,
    );
    expect(r.status).toBe(0);
    const got = readSafetensors(readFileSync(out));
    expect(got.get("h")!.shape).toEqual([T, B, 10]);
    expect([...got.keys()].sort()).toContain("l1.reverse.h.final");
  });

  it("cellc run with a network's parameters file ignores the readout's, with a note", () => {
    const p = prepared.get("gru-adding")!;
    const out = join(tmp, "run2.out.safetensors");
    const r = cellc(
      "run",
      "examples/cells/gru.cell",
      "--params",
      join(p.dir, "params.safetensors"),
      "--inputs",
      join(p.dir, "inputs.safetensors"),
      "--out",
      out,
    );
    expect(r.stderr).toBe(
      `cellc: note: parameters 'Wy', 'by' of '${join(p.dir, "params.safetensors")}' are not the cell's (a network's readout or embedding): ignored; this runs cell 'gru' alone\n`,
    );
    expect(r.status).toBe(0);
  });
});
