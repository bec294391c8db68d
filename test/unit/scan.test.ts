// Scan states (compiler/schedule/scan.ts): which states are recognised from the IR, how the schedule runs
// them, and that the scan computes what the step loop computes (the same cell compiled with scans off).
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { compileCell, jsBackend, Model, tensor } from "../../api/index.js";
import { buildCellIR } from "../../compiler/driver.js";
import { hasErrors } from "../../compiler/diag/diagnostic.js";
import { buildSchedule } from "../../compiler/schedule/build.js";
import { emitStage } from "../../compiler/stage.js";
import { createWasmBackend } from "../../runtime/cpu/wasm.js";
import { Rng } from "../../runtime/init.js";
import { walkBackward, walkForward, walkPlan } from "../../runtime/walk.js";
import { mismatches } from "../compare.js";
import { gradcheckModel } from "../gradcheck/check.js";
import { checkSource, nodeHost, passTensors } from "../helpers.js";

/** A cell with an input-only gate z and candidate n, and the equations given. */
const cellWith = (eqs: string, states = "h[H]") => `cell t {
  input x[D]
  state ${states}
  param Wz, Wn : [H, D]
  param Uz : [H, H]
  param bz : [H]
  z = sigmoid(Wz @ x + bz)
  n = tanh(Wn @ x)
  ${eqs}
  output h'
}`;

function schedule(src: string, scan = true) {
  const r = checkSource(src);
  if (hasErrors(r.diagnostics)) throw new Error(r.diagnostics.map((d) => d.message).join("\n"));
  return buildSchedule(buildCellIR(r.checked.get(r.cellNames[0]!)!), { scan });
}
const recurrences = (src: string) => schedule(src).recurrences.map((r) => [r.scan, r.why]);

describe("scan states are recognised from the IR, whatever the written form", () => {
  const scans: Record<string, string> = {
    "minGRU's form": "h' = (1 - z) * h + z * n",
    "the terms the other way round": "h' = z * n + h * (1 - z)",
    "minLSTM's normalised gates": "f = sigmoid(Wn @ x)\n h' = f / (f + z) * h + z / (f + z) * n",
    "a coefficient of one": "h' = h + Wn @ x",
    "a constant coefficient": "h' = 0.9 * h + n",
    "a parameter as the coefficient": "h' = bz * h + n",
    "a sum of two terms in h": "h' = z * h + 0.5 * h - (h - n) * z",
    "a quotient": "h' = (h * z - n) / (1 + z)",
    "a negation": "h' = -(z * (n - h))",
  };
  for (const [what, eqs] of Object.entries(scans))
    it(what, () =>
      expect(recurrences(cellWith(eqs))[0]![0], String(recurrences(cellWith(eqs))[0]![1])).toBe(true),
    );

  const loops: Record<string, [string, RegExp]> = {
    "a gate that reads h (Uz @ h inside z)": [
      "g = sigmoid(Wz @ x + Uz @ h + bz)\n h' = (1 - g) * h + g * n",
      /h' is not affine in h: a product of two values that read h/,
    ],
    "a nonlinearity of h": ["h' = tanh(h + n)", /tanh of a value that reads h/],
    "h times h": ["h' = h * h + n", /a product of two values that read h/],
    "a division by h": ["h' = n / (1 + h * h)", /a division by a value that reads h/],
    "a matrix product on h": ["h' = Uz @ h + n", /reads h through a matrix product/],
    "a sum over h's features": ["h' = sum(h) * n", /reads h through a sum over features/],
  };
  for (const [what, [eqs, why]] of Object.entries(loops))
    it(`not: ${what}`, () => {
      const [scan, reason] = recurrences(cellWith(eqs))[0]!;
      expect(scan).toBe(false);
      expect(reason).toMatch(why);
    });

  it("a state whose next value reads another state is not one; the other may be", () => {
    const src = cellWith("c' = z * c + n\n h' = tanh(Uz @ h + c)", "h[H], c[H]");
    expect(recurrences(src)).toEqual([
      [false, "h' reads the state c"],
      [true, "c' = a * c + b, a and b reading no state"],
    ]);
    expect(recurrences(cellWith("c' = z * c + h\n h' = n + c", "h[H], c[H]"))[1]).toEqual([
      false,
      "c' reads the state h",
    ]);
  });

  it("a state whose next value reads no state at all is a scan with a = 0", () => {
    const src = cellWith("c' = n * z\n h' = tanh(Uz @ h + c)", "h[H], c[H]");
    expect(recurrences(src)[1]).toEqual([true, "c' reads no state (a = 0)"]);
  });

  it("scans off: every state runs in the step loop", () => {
    const s = schedule(cellWith("h' = (1 - z) * h + z * n"), false);
    expect(s.scans).toEqual([]);
    expect(s.recurrences[0]!.why).toBe("scans disabled");
    expect(s.forward.step.rows).toBe("B");
  });
});

describe("the schedule of scan states", () => {
  const emit = (name: string) =>
    emitStage(readFileSync(`examples/cells/${name}.cell`, "utf8"), "schedule", undefined, {
      file: `examples/cells/${name}.cell`,
      host: nodeHost,
    });
  it("--emit schedule shows the scan of minGRU and minLSTM, and why GRU and LSTM have none", () => {
    for (const name of ["mingru", "minlstm", "rglru"]) {
      const text = emit(name);
      expect(text).toContain("  h: scan: h' = a * h + b, a and b reading no state");
      expect(text).toContain("scan forward:");
      expect(text).toContain("scan backward:");
      expect(text).toContain("kernel step: forward, once after the scan, over all T*B rows");
      expect(text).toContain("launches per step: none");
    }
    expect(emit("gru")).toContain(
      "  h: step loop: h' is not affine in h: a product of two values that read h (15:9, in: h' = (1 - z) * n + z * h)",
    );
    expect(emit("lstm")).toContain("  h: step loop: h' reads the state c");
    for (const name of ["gru", "lstm"]) expect(emit(name)).not.toContain("scan forward");
  });

  it("every state a scan state: the step and loop kernels run once, so the launches do not grow with T", () => {
    const s = schedule(cellWith("h' = (1 - z) * h + z * n"));
    expect([s.forward.step.rows, s.backward.loop.rows]).toEqual(["TB", "TB"]);
    const cell = compileCell(cellWith("h' = (1 - z) * h + z * n"));
    const calls = (T: number) => {
      const log: string[] = [];
      const x = {
        run: (k: string) => log.push(k),
        mask: (k: string, w: string) => log.push(`${k}.${w}`),
        scan: (d: string) => log.push(`scan ${d}`),
      };
      walkForward(x, walkPlan(cell.artifact), T, true);
      walkBackward(x, walkPlan(cell.artifact), T, true);
      return log;
    };
    expect(calls(5)).toEqual(calls(5000));
    expect(calls(5)).toEqual([
      "before",
      "scan forward",
      "step",
      "step.postmask",
      "loop.premask",
      "loop",
      "loop.postmask",
      "scan backward",
      "after",
    ]);
  });

  it("a cell mixing both keeps the step loop for the other state, after the scan", () => {
    const s = schedule(cellWith("c' = z * c + n\n h' = tanh(Uz @ h + c')", "h[H], c[H]"));
    expect(s.scans.map((x) => x.state)).toEqual([1]);
    expect([s.forward.step.rows, s.backward.loop.rows]).toEqual(["B", "B"]);
  });
});

/** Random inputs and upstream gradients; every output, final state and gradient by name. */
async function run(model: Model, T: number, B: number, seqLens: number[] | undefined, seed: number) {
  const rng = new Rng(seed);
  const D = model.sizes[0]!.D!;
  const rand = (shape: readonly number[]) =>
    tensor(
      model.dtype,
      [...shape],
      Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => Math.fround(2 * rng.next() - 1)),
    );
  const x = rand([T, B, D]);
  const probe = await model.forwardAsync({ x }, { train: false });
  const inits = new Map([...probe.finalStates].map(([n, t]) => [n, rand(t.shape)]));
  const f = await model.forwardAsync({ x }, { seqLens, initialStates: inits });
  const up = {
    outputs: new Map([...f.outputs].map(([n, t]) => [n, rand(t.shape)])),
    finalStates: new Map([...f.finalStates].map(([n, t]) => [n, rand(t.shape)])),
  };
  const g = await model.backwardAsync(f, up);
  return passTensors(f, g);
}

const MIXED = cellWith("c' = z * c + n\n h' = tanh(Uz @ h + c') * (1 - z) + z * c", "h[H], c[H]");
const SOURCES: [string, string][] = [
  ...["mingru", "minlstm", "rglru"].map((n): [string, string] => [
    n,
    readFileSync(`examples/cells/${n}.cell`, "utf8"),
  ]),
  ["mixed", MIXED],
];

describe("the scan computes what the step loop computes", () => {
  const pair = (src: string, dtype: "f32" | "f64", opts: object, backend = jsBackend) => {
    const scan = new Model(compileCell(src, { host: nodeHost }), { dims: { D: 3, H: 5 }, seed: 2, dtype, backend, ...opts }); // prettier-ignore
    const loop = new Model(compileCell(src, { host: nodeHost, scan: false }), { params: scan.params, dtype, backend: jsBackend, ...opts }); // prettier-ignore
    return { scan, loop };
  };
  for (const [name, src] of SOURCES)
    for (const opts of [{}, { layers: 2, bidirectional: true }])
      it(`${name} ${JSON.stringify(opts)}: JS, float64, with sequence lengths and initial states`, async () => {
        const { scan, loop } = pair(src, "f64", opts);
        for (const lens of [undefined, [9, 4, 0, 1]]) {
          const a = await run(scan, 9, 4, lens, 1);
          const b = await run(loop, 9, 4, lens, 1);
          expect(mismatches(a, b, 1e-12, 1e-10)).toEqual([]);
        }
      });

  // At T = 4096 in float32: the scan (JS and wasm) against the step loop (JS), within float32 rounding.
  for (const [name, src] of SOURCES)
    it(`${name}: T = 4096, float32, JS and wasm`, async () => {
      for (const backend of [jsBackend, createWasmBackend()]) {
        const { scan, loop } = pair(src, "f32", {}, backend);
        const a = await run(scan, 4096, 2, [4096, 3000], 3);
        const b = await run(loop, 4096, 2, [4096, 3000], 3);
        // Gradients are sums over 8192 rows: their rounding grows with the sum, hence the absolute term.
        expect(mismatches(a, b, 1e-4, 1e-3), backend.name).toEqual([]);
      }
    });

  it("gradients of a cell mixing a scan state and a step-loop state pass finite differences (float64)", () => {
    const cell = compileCell(MIXED);
    for (const opts of [{}, { bidirectional: true }]) {
      const model = new Model(cell, { dtype: "f64", dims: { D: 3, H: 4 }, seed: 7, ...opts });
      expect(gradcheckModel(model, "x", 3, [4, 2, 3], 11)).toEqual([]);
    }
  });
});
