import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { compileCell, Model, readSafetensors, writeSafetensors, type Tensor } from "../../api/index.js";
import { mismatches } from "../compare.js";
import { nodeHost } from "../helpers.js";
import { hasTorch, PYTHON } from "./python.js";
import { cases, DIR, loadFixture, type Case } from "../reference/fixtures.js";

/**
 * `cellc import torch` against the PyTorch fixtures (test/reference/gen_torch.py): a state dict in
 * PyTorch's layout goes in, and the imported parameters must reproduce PyTorch's outputs, final states and
 * gradients; with torch installed, also real nn.LSTM / nn.GRU / nn.RNN state dicts.
 */
const load = loadFixture;
const tmp = mkdtempSync(join(tmpdir(), "cellc-import-"));
const cellc = (...args: string[]) =>
  spawnSync(process.execPath, ["bin/cellc.js", ...args], { encoding: "utf8" });

// PyTorch's layout, as its documentation gives it: gates stacked by rows (i, f, g, o; r, z, n), one bias
// per side. The fixture's cell biases are bias_ih + bias_hh; here all of it goes to bias_ih.
const ORDER: Record<string, string[]> = { rnn: [""], lstm: ["i", "f", "g", "o"], gru: ["r", "z", "n"] };
function torchLayout(c: Case, params: Map<string, Tensor>): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  const cat = (ts: Tensor[]): Tensor => ({
    dtype: ts[0]!.dtype,
    shape: [ts.reduce((a, t) => a + t.shape[0]!, 0), ...ts[0]!.shape.slice(1)],
    data: Float64Array.from(ts.flatMap((t) => [...t.data])),
  });
  const zeros = (t: Tensor): Tensor => ({ ...t, data: new Float64Array(t.data.length) });
  for (let l = 0; l < c.layers; l++)
    for (let d = 0; d < (c.bidirectional ? 2 : 1); d++) {
      const pre = c.layers > 1 || c.bidirectional ? `l${l}.${d ? "reverse." : ""}` : "";
      const p = (n: string) => params.get(pre + n)!;
      const sfx = `_l${l}${d ? "_reverse" : ""}`;
      const gates = ORDER[c.cell]!;
      const W = c.cell === "rnn" ? ["W"] : gates.map((g) => `W${g}`);
      const U = c.cell === "rnn" ? ["U"] : gates.map((g) => `U${g}`);
      const bi = gates.map((g) => (c.cell === "rnn" ? "b" : g === "n" && c.cell === "gru" ? "bin" : `b${g}`));
      out.set(`weight_ih${sfx}`, cat(W.map(p)));
      out.set(`weight_hh${sfx}`, cat(U.map(p)));
      out.set(`bias_ih${sfx}`, cat(bi.map(p)));
      out.set(
        `bias_hh${sfx}`,
        cat(gates.map((g, k) => (c.cell === "gru" && g === "n" ? p("bhn") : zeros(p(bi[k]!))))),
      );
    }
  return out;
}

async function runCell(cellName: string, params: Map<string, Tensor>, c: Case, fixture: string) {
  const file = `examples/cells/${cellName}.cell`;
  const cell = compileCell(readFileSync(file, "utf8"), { file, host: nodeHost });
  const model = new Model(cell, { params, dtype: "f64", layers: c.layers, bidirectional: c.bidirectional });
  const inputs = load(fixture, "inputs");
  const inits = new Map<string, Tensor>();
  for (const [n, t] of inputs) if (n.endsWith(".init")) inits.set(n.slice(0, -5), t);
  const fwd = model.forward(
    { x: inputs.get("x")! },
    { initialStates: inits, seqLens: inputs.get("seq_lens")?.data as Int32Array | undefined },
  );
  const out = new Map<string, Tensor>();
  for (const [n, t] of fwd.outputs) out.set(n, t);
  for (const [n, t] of fwd.finalStates) out.set(`${n}.final`, t);
  return out;
}

describe("cellc import torch", () => {
  for (const c of cases)
    it(c.name, async () => {
      const state = join(tmp, `${c.name}.state.safetensors`);
      const outFile = join(tmp, `${c.name}.params.safetensors`);
      writeFileSync(state, writeSafetensors(torchLayout(c, load(c.name, "params"))));
      const opts = [
        ...(c.layers > 1 ? ["--layers", String(c.layers)] : []),
        ...(c.bidirectional ? ["--bidirectional"] : []),
      ];
      const r = cellc(
        "import",
        "torch",
        state,
        "--cell",
        `examples/cells/${c.cell}.cell`,
        "--out",
        outFile,
        ...opts,
      );
      expect(r.stderr).toBe("");
      expect(r.status).toBe(0);
      const got = await runCell(c.cell, readSafetensors(readFileSync(outFile)), c, c.name);
      const want = new Map([...load(c.name, "expected")].filter(([n]) => !n.startsWith("grad.")));
      expect(mismatches(got, want, 1e-9, 1e-9)).toEqual([]);
    });

  it("refuses a cell that is not a PyTorch module, and state dicts that do not fit", () => {
    const c = cases.find((k) => k.name === "gru_basic")!;
    const state = join(tmp, "gru.state.safetensors");
    const sd = torchLayout(c, load(c.name, "params"));
    writeFileSync(state, writeSafetensors(sd));
    const cho = cellc(
      "import",
      "torch",
      state,
      "--cell",
      "examples/cells/gru_cho.cell",
      "--out",
      join(tmp, "x"),
    );
    expect(cho.status).toBe(1);
    expect(cho.stderr).toContain("nn.GRU applies the reset gate after the recurrent matmul");
    const lstm = cellc(
      "import",
      "torch",
      state,
      "--cell",
      "examples/cells/lstm.cell",
      "--out",
      join(tmp, "x"),
    );
    expect(lstm.status).toBe(1);
    expect(lstm.stderr).toContain("'weight_hh_l0' has shape [12, 4]; nn.LSTM's is [4*H, H]");
    sd.set("weight_hh_l1", sd.get("weight_hh_l0")!);
    writeFileSync(state, writeSafetensors(sd));
    const extra = cellc(
      "import",
      "torch",
      state,
      "--cell",
      "examples/cells/gru.cell",
      "--out",
      join(tmp, "x"),
    );
    expect(extra.stderr).toContain("unexpected entries 'weight_hh_l1'");
    expect(extra.stderr).not.toContain("    at ");
  });

  it.skipIf(!hasTorch)("real nn.LSTM, nn.GRU and nn.RNN state dicts", async () => {
    const script = `
import sys, torch
sys.path.insert(0, "test/export")
from torch_driver import read_safetensors, write_safetensors
kind, fixture, out = sys.argv[1:4]
torch.manual_seed(3)
cls = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[kind]
m = cls(3, 4, num_layers=2, bidirectional=True).double()
inp = read_safetensors("${DIR}/" + fixture + "/inputs.safetensors")
y, _ = m(inp["x"].double())
write_safetensors(out + ".state", dict(m.state_dict()))
write_safetensors(out + ".y", {"h": y})
`;
    for (const kind of ["rnn", "lstm", "gru"]) {
      const fixture = "rnn_basic"; // its x, without lengths or initial states
      const base = join(tmp, `real_${kind}`);
      execFileSync(PYTHON, ["-c", script, kind, fixture, base]);
      const r = cellc(
        "import",
        "torch",
        `${base}.state`,
        "--cell",
        `examples/cells/${kind}.cell`,
        "--out",
        `${base}.p`,
        "--layers",
        "2",
        "--bidirectional",
      );
      expect(r.stderr).toBe("");
      const c: Case = { name: fixture, cell: kind, layers: 2, bidirectional: true };
      const got = await runCell(kind, readSafetensors(readFileSync(`${base}.p`)), c, fixture);
      const want = readSafetensors(readFileSync(`${base}.y`));
      expect(mismatches(new Map([["h", got.get("h")!]]), want, 1e-9, 1e-9)).toEqual([]);
    }
  });
});
