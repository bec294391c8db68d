import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createThreadedWasmBackend, createWasmBackend } from "../../runtime/cpu/wasm.js";
import { jsBackend, compileCell, Model, tensor } from "../../api/index.js";
import { checkProgram } from "../../compiler/driver.js";
import { mismatches } from "../compare.js";
import { builtinCellFiles, nodeHost, everything } from "../helpers.js";

describe("the wasm backend matches the JS backend on every built-in cell, at sizes no tile divides", () => {
  const wasm = createWasmBackend();
  for (const file of builtinCellFiles())
    for (const name of checkProgram(file, nodeHost).cellNames)
      for (const [H, B] of [
        [1, 1],
        [17, 5],
        [3, 2],
      ] as const)
        it(`${name}: H=${H}, B=${B}, two layers, bidirectional, seq_lens`, async () => {
          const cell = compileCell(readFileSync(file, "utf8"), { file, cell: name, host: nodeHost });
          const dims = Object.fromEntries(cell.signature.dims.map((d) => [d, d === "D" ? 3 : H]));
          let opts = { dims, seed: 7, layers: 2, bidirectional: true };
          try {
            new Model(cell, opts);
          } catch {
            opts = { dims, seed: 7, layers: 1, bidirectional: false };
          }
          const js = new Model(cell, { ...opts, backend: jsBackend });
          const wm = new Model(cell, { ...opts, params: js.params, backend: wasm });
          const T = 4;
          const x = new Map(
            cell.signature.inputs.map((inp, k) => {
              const feat: number[] = inp.type.dims.map((d) => (d.terms.D ? 3 : H));
              const n = T * B * feat.reduce((a, b) => a * b, 1);
              return [
                inp.name,
                tensor(
                  "f32",
                  [T, B, ...feat],
                  Float32Array.from({ length: n }, (_, i) => Math.sin(i + k)),
                ),
              ];
            }),
          );
          const lens = Array.from({ length: B }, (_, b) => Math.max(1, T - b));
          const want = await everything(js, x, lens);
          const calls = wasm.gemms.calls;
          const got = await everything(wm, x, lens);
          // The GEMMs ran in WebAssembly (every built-in cell has a matmul).
          expect(wasm.gemms.calls).toBeGreaterThan(calls);
          expect(mismatches(got, want, 1e-5, 1e-4)).toEqual([]);
        });
});

describe("the wasm backend on two threads gives what one thread gives, bit for bit", () => {
  for (const name of ["lstm", "gru", "mgu"])
    it(`${name}: T=6, B=7, D=5, H=33, training step`, async () => {
      const one = createWasmBackend();
      const two = await createThreadedWasmBackend(2);
      expect(two.gemms.threads).toBe(2);
      const cell = compileCell(readFileSync(`examples/cells/${name}.cell`, "utf8"));
      const a = new Model(cell, { dims: { D: 5, H: 33 }, seed: 3, backend: one });
      const b = new Model(cell, { params: a.params, backend: two });
      const x = new Map([
        [
          "x",
          tensor(
            "f32",
            [6, 7, 5],
            Float32Array.from({ length: 210 }, (_, i) => Math.cos(i)),
          ),
        ],
      ]);
      const want = await everything(a, x, [6, 5, 4, 3, 2, 1, 6]);
      const calls = two.gemms.calls;
      const got = await everything(b, x, [6, 5, 4, 3, 2, 1, 6]);
      expect(two.gemms.calls).toBeGreaterThan(calls);
      for (const [k, v] of want) expect(Array.from(got.get(k)!.data), k).toEqual(Array.from(v.data));
    });
});

describe("cellc run --backend wasm", () => {
  it("gives the same file on one thread and on two, and refuses a bad --threads", () => {
    const dir = mkdtempSync(join(tmpdir(), "cellc-wasm-"));
    const run = (threads: string) =>
      spawnSync(
        process.execPath,
        [
          "bin/cellc.js",
          "run",
          "examples/cells/gru.cell",
          "--params",
          "test/fixtures/torch/gru_init_lens_upstream/params.safetensors",
          "--inputs",
          "test/fixtures/torch/gru_init_lens_upstream/inputs.safetensors",
          "--out",
          join(dir, `t${threads}.safetensors`),
          "--grad",
          "--backend",
          "wasm",
          "--threads",
          threads,
        ],
        { encoding: "utf8" },
      );
    expect(run("1").status).toBe(0);
    expect(run("2").status).toBe(0);
    expect(readFileSync(join(dir, "t2.safetensors")).equals(readFileSync(join(dir, "t1.safetensors")))).toBe(
      true,
    );
    const bad = run("0");
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/--threads must be 'all' or an integer from 1 to 256, got '0'/);
  });
});
