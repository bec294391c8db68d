import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  compileCell,
  jsBackend,
  Model,
  readSafetensors,
  type Backend,
  type Tensor,
} from "../../api/index.js";
import { createWasmBackend } from "../../runtime/cpu/wasm.js";
import { hasWebGpu, webgpu } from "../webgpu/setup.js";
import { mismatches } from "../compare.js";
import { nodeHost } from "../helpers.js";
import { cases, DIR, loadFixture, type Case } from "./fixtures.js";

/**
 * PyTorch's nn.RNN / nn.LSTM / nn.GRU values (test/reference/gen_torch.py wrote them) against cellc's
 * rnn.cell, lstm.cell and gru.cell: outputs, final states and every gradient, through the library API in
 * float64 and float32, and through the `cellc run` command line.
 */
const load = (c: Case, f: string) => loadFixture(c.name, f);

async function runApi(c: Case, dtype: "f32" | "f64", backend?: Backend): Promise<Map<string, Tensor>> {
  const file = `examples/cells/${c.cell}.cell`;
  const cell = compileCell(readFileSync(file, "utf8"), { file, host: nodeHost });
  const model = new Model(cell, {
    params: load(c, "params"),
    dtype,
    layers: c.layers,
    bidirectional: c.bidirectional,
    backend,
  });
  expect(model.backend.name).toBe(backend?.name ?? (dtype === "f64" ? "js" : "wasm"));
  const inputs = load(c, "inputs");
  const inits = new Map<string, Tensor>();
  const upOut = new Map<string, Tensor>();
  const upFin = new Map<string, Tensor>();
  for (const [n, t] of inputs) {
    if (n.endsWith(".init")) inits.set(n.slice(0, -5), t);
    else if (n.startsWith("upstream.") && n.endsWith(".final")) upFin.set(n.slice(9, -6), t);
    else if (n.startsWith("upstream.")) upOut.set(n.slice(9), t);
  }
  const seqLens = inputs.get("seq_lens")?.data as Int32Array | undefined;
  const fwd = await model.forwardAsync({ x: inputs.get("x")! }, { initialStates: inits, seqLens });
  const g = await model.backwardAsync(
    fwd,
    upOut.size || upFin.size ? { outputs: upOut, finalStates: upFin } : {},
  );
  const out = new Map<string, Tensor>();
  for (const [n, t] of fwd.outputs) out.set(n, t);
  for (const [n, t] of fwd.finalStates) out.set(`${n}.final`, t);
  for (const [n, t] of g.params) out.set(`grad.${n}`, t);
  for (const [n, t] of g.inputs) out.set(`grad.${n}`, t);
  for (const [n, t] of g.initialStates) out.set(`grad.${n}.init`, t);
  return out;
}

describe("PyTorch reference values", () => {
  it("has the cases the generator writes", () => expect(cases.length).toBe(15));
  for (const c of cases) {
    it(`${c.name}: float64`, async () => {
      expect(mismatches(await runApi(c, "f64"), load(c, "expected"), 1e-10, 1e-9)).toEqual([]);
    });
    it(`${c.name}: float32 (the default backend)`, async () => {
      const out = await runApi(c, "f32");
      expect([...out.values()].every((t) => t.dtype === "f32")).toBe(true);
      expect(mismatches(out, load(c, "expected"), 2e-5, 2e-4)).toEqual([]);
    });
    it(`${c.name}: float32 on the JS backend`, async () => {
      const out = await runApi(c, "f32", jsBackend);
      expect(mismatches(out, load(c, "expected"), 2e-5, 2e-4)).toEqual([]);
    });
  }
});

describe.skipIf(!hasWebGpu)("PyTorch reference values on WebGPU", () => {
  for (const c of cases)
    it(c.name, async () => {
      const out = await runApi(c, "f32", await webgpu());
      expect(mismatches(out, load(c, "expected"), 2e-5, 2e-4)).toEqual([]);
    });
});

describe("PyTorch reference values on the wasm backend (GEMMs in WebAssembly SIMD)", () => {
  const wasm = createWasmBackend();
  for (const c of cases)
    it(c.name, async () => {
      const out = await runApi(c, "f32", wasm);
      expect(mismatches(out, load(c, "expected"), 2e-5, 2e-4)).toEqual([]);
    });
});

describe("cellc run end to end", () => {
  const tmp = mkdtempSync(join(tmpdir(), "cellc-run-"));
  for (const c of cases)
    it(c.name, () => {
      const out = join(tmp, `${c.name}.safetensors`);
      const args = [
        "bin/cellc.js",
        "run",
        `examples/cells/${c.cell}.cell`,
        "--params",
        `${DIR}/${c.name}/params.safetensors`,
      ];
      args.push("--inputs", `${DIR}/${c.name}/inputs.safetensors`, "--out", out, "--grad", "--backend", "js");
      if (c.layers > 1) args.push("--layers", String(c.layers));
      if (c.bidirectional) args.push("--bidirectional");
      execFileSync(process.execPath, args, { stdio: "pipe" });
      const result = readSafetensors(readFileSync(out));
      expect([...result.values()].every((t) => t.dtype === "f32")).toBe(true);
      expect(mismatches(result, load(c, "expected"), 2e-5, 2e-4)).toEqual([]);
    });
  it("--f64 writes float64 and matches tightly", () => {
    const c = cases.find((x) => x.name === "lstm_init_lens_upstream")!;
    const out = join(tmp, "f64.safetensors");
    execFileSync(process.execPath, [
      "bin/cellc.js",
      "run",
      "examples/cells/lstm.cell",
      "--params",
      `${DIR}/${c.name}/params.safetensors`,
      "--inputs",
      `${DIR}/${c.name}/inputs.safetensors`,
      "--out",
      out,
      "--grad",
      "--f64",
    ]);
    const result = readSafetensors(readFileSync(out));
    expect(result.get("h")!.dtype).toBe("f64");
    expect(mismatches(result, load(c, "expected"), 1e-10, 1e-9)).toEqual([]);
  });
});
