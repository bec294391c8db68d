import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { emitScheduleWgsl } from "../../compiler/codegen/wgsl.js";
import { buildSchedule } from "../../compiler/schedule/build.js";
import { KERNEL_NAMES } from "../../compiler/schedule/types.js";
import { buildCellIR, checkProgram } from "../../compiler/driver.js";
import { CellcError, compileCell, Model, readSafetensors, tensor } from "../../api/index.js";
import { builtinCellFiles, expectGolden, nodeHost } from "../helpers.js";
import { hasWebGpu, webgpu } from "./setup.js";
import { mismatches } from "../compare.js";
import { WgslCompileError } from "../../runtime/webgpu/index.js";

describe("golden WGSL of every built-in cell", () => {
  for (const file of builtinCellFiles()) {
    const r = checkProgram(file, nodeHost);
    for (const name of r.cellNames)
      it(name, () => {
        const w = emitScheduleWgsl(buildSchedule(buildCellIR(r.checked.get(name)!)));
        const text = KERNEL_NAMES.map((k) => `// kernel ${k}\n${w[k].code}`).join("\n");
        expectGolden(`test/golden/${name}.wgsl.txt`, text);
      });
  }
});

describe.skipIf(!hasWebGpu)("WebGPU from the command line and at the device's limits", () => {
  const tmp = mkdtempSync(join(tmpdir(), "cellc-gpu-"));
  it("cellc run --backend webgpu matches PyTorch", () => {
    const c = "test/fixtures/torch/gru_init_lens_upstream";
    const out = join(tmp, "gru.safetensors");
    execFileSync(
      process.execPath,
      [
        "bin/cellc.js",
        "run",
        "examples/cells/gru.cell",
        "--params",
        `${c}/params.safetensors`,
        "--inputs",
        `${c}/inputs.safetensors`,
        "--out",
        out,
        "--grad",
        "--backend",
        "webgpu",
      ],
      { stdio: "pipe" },
    );
    const got = readSafetensors(readFileSync(out));
    const want = readSafetensors(readFileSync(`${c}/expected.safetensors`));
    expect(mismatches(got, want, 2e-5, 2e-4)).toEqual([]);
  });
  it("cellc run --backend webgpu --precision f16 matches PyTorch within float16's precision", async () => {
    if (!(await webgpu())!.f16) return console.warn("skipped: this WebGPU adapter has no 'shader-f16'");
    const c = "test/fixtures/torch/gru_init_lens_upstream";
    const out = join(tmp, "gru16.safetensors");
    const run = (extra: string[]) =>
      execFileSync(
        process.execPath,
        [
          "bin/cellc.js",
          "run",
          "examples/cells/gru.cell",
          "--params",
          `${c}/params.safetensors`,
          "--inputs",
          `${c}/inputs.safetensors`,
          "--out",
          out,
          "--grad",
          ...extra,
        ],
        { stdio: "pipe" },
      );
    run(["--backend", "webgpu", "--precision", "f16"]);
    const got = readSafetensors(readFileSync(out));
    const want = readSafetensors(readFileSync(`${c}/expected.safetensors`));
    expect(mismatches(got, want, 5e-3, 5e-3)).toEqual([]);
    expect(mismatches(got, want, 2e-5, 2e-4)).not.toEqual([]); // float16 storage indeed
    expect(() => run(["--backend", "js", "--precision", "f16"])).toThrow(
      /--precision f16 goes with --backend webgpu/,
    );
  });
  it("a sequence too large for one storage buffer is refused, naming the limit", async () => {
    const backend = (await webgpu())!;
    const limit = backend.device.limits.maxStorageBufferBindingSize;
    const H = Math.ceil(Math.sqrt(limit / 4 / 2)) + 1; // W and U of the rnn, with their gradients, exceed it
    const cell = compileCell(readFileSync("examples/cells/rnn.cell", "utf8"));
    const params = { W: tensor("f32", [H, 1]), U: tensor("f32", [H, H]), b: tensor("f32", [H]) };
    const model = new Model(cell, { params, backend });
    await expect(model.forwardAsync({ x: tensor("f32", [1, 1, 1]) })).rejects.toThrow(
      /maxStorageBufferBindingSize \(\d+ bytes\)/,
    );
    // The failed call left nothing behind: a model that fits still runs on the same backend.
    const ok = new Model(cell, { dims: { D: 1, H: 2 }, backend });
    const r = await ok.forwardAsync({ x: tensor("f32", [2, 1, 1], [0.5, -0.5]) });
    expect(r.outputs.get("h")!.shape).toEqual([2, 1, 2]);
  });
  it("WGSL that does not compile (an edited artifact) is refused with the line and the kernel's source", async () => {
    const backend = (await webgpu())!;
    const cell = compileCell(readFileSync("examples/cells/rnn.cell", "utf8"));
    const step = cell.artifact.wgsl!.step;
    Object.assign(step, { code: step.code.replace("struct Control", "fn broken( {\nstruct Control") });
    const model = new Model(cell, { dims: { D: 2, H: 2 }, backend });
    const run = model.forwardAsync({ x: tensor("f32", [1, 1, 2]) });
    await expect(run).rejects.toThrow(WgslCompileError);
    await expect(run).rejects.toThrow(CellcError);
    await expect(run).rejects.toThrow(
      /the WGSL of the step kernel of 'rnn' does not compile \(an edited artifact, or a cellc bug\):\nline \d+:\d+: [^]*fn broken\( \{[^]*--- kernel source ---/,
    );
  });
  it("cellc compile --target wgsl writes the kernels and a manifest", () => {
    const dir = join(tmp, "wgsl");
    execFileSync(process.execPath, [
      "bin/cellc.js",
      "compile",
      "examples/cells/lstm.cell",
      "--target",
      "wgsl",
      "--out",
      dir,
    ]);
    const m = JSON.parse(readFileSync(join(dir, "lstm.wgsl.json"), "utf8"));
    expect(m.dims.map((d: { dim: string }) => d.dim)).toEqual(["D", "H"]);
    // One launch per step: the GEMM with the cell's update as its epilogue.
    expect(m.kernels.step.entryPoints.filter((e: { when: string }) => e.when === "every call")).toHaveLength(
      1,
    );
    expect(m.layout).toMatch(/padded to a multiple of 4 floats/);
    const wi = m.buffers.find((b: { kind: string; name: string }) => b.kind === "param" && b.name === "Wi");
    expect(wi.row).toEqual(["H", "D"]);
    for (const k of KERNEL_NAMES) {
      const code = readFileSync(join(dir, `lstm.${k}.wgsl`), "utf8");
      for (const e of m.kernels[k].entryPoints) expect(code).toContain(`fn ${e.name}(`);
    }
    const artifact = JSON.parse(readFileSync(join(dir, "lstm.artifact.json"), "utf8"));
    expect(artifact.wgsl.step.code).toBe(readFileSync(join(dir, "lstm.step.wgsl"), "utf8"));
  });
  it("the sync API says to use the async one on WebGPU", async () => {
    const backend = (await webgpu())!;
    const cell = compileCell(readFileSync("examples/cells/rnn.cell", "utf8"));
    const model = new Model(cell, { dims: { D: 2, H: 2 }, backend });
    expect(() => model.forward({ x: tensor("f32", [1, 1, 2]) })).toThrow(/use forwardAsync\(\)/);
    expect(() => model.stream(1)).toThrow(/stream\(\) runs on the js backend only, not on webgpu/);
  });
});
