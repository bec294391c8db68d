import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { buildCellIR, checkProgram } from "../../compiler/driver.js";
import { hasErrors } from "../../compiler/diag/diagnostic.js";
import { printCell } from "../../compiler/ir/print.js";
import { builtinCellFiles, expectGolden, nodeHost } from "../helpers.js";
import { emitScheduleJs } from "../../compiler/codegen/js.js";
import { buildSchedule } from "../../compiler/schedule/build.js";
import { launches, printSchedule } from "../../compiler/schedule/print.js";

describe("printed IR of every built-in cell", () => {
  for (const file of builtinCellFiles()) {
    const r = checkProgram(file, nodeHost);
    it(`${file} checks without errors`, () => {
      expect(hasErrors(r.diagnostics)).toBe(false);
      expect(r.cellNames.length).toBeGreaterThan(0);
    });
    for (const name of r.cellNames)
      it(`${file} ${name}`, () => {
        const cell = r.checked.get(name)!;
        const ir = buildCellIR(cell);
        const base = file.replace(/^examples\/cells\//, "").replace(/\.cell$/, "");
        expectGolden(`test/golden/${base}.${name}.ir.txt`, printCell(ir, r.program.sources));
      });
  }
});

describe("the schedule of every built-in cell", () => {
  for (const file of builtinCellFiles()) {
    const r = checkProgram(file, nodeHost);
    for (const name of r.cellNames)
      it(name, () => {
        const s = buildSchedule(buildCellIR(r.checked.get(name)!));
        expectGolden(`test/golden/${name}.schedule.txt`, printSchedule(s));
      });
  }
});

describe("the schedule's kernel graphs (grad-ir) and JS kernels of the reference cells", () => {
  for (const name of ["rnn", "lstm", "gru"]) {
    const file = `examples/cells/${name}.cell`;
    it(name, () => {
      const r = checkProgram(file, nodeHost);
      const s = buildSchedule(buildCellIR(r.checked.get(name)!));
      expectGolden(
        `test/golden/${name}.grad-ir.txt`,
        printSchedule(s, { graphs: true, sources: r.program.sources }),
      );
      expectGolden(`test/golden/${name}.js.txt`, emitScheduleJs(s));
    });
  }
});

describe("how the schedule runs the reference cells", () => {
  const schedule = (name: string) => {
    const r = checkProgram(`examples/cells/${name}.cell`, nodeHost);
    return buildSchedule(buildCellIR(r.checked.get(name)!));
  };
  it("LSTM: the four input projections are one GEMM before the loop, the four recurrent ones one GEMM per step", () => {
    const s = schedule("lstm");
    expect(s.packs.map((p) => [p.phase, p.blocks.map((b) => s.signature.params[b.param]!.name)])).toEqual([
      ["before", ["Wi", "Wf", "Wg", "Wo"]],
      ["step", ["Ui", "Uf", "Ug", "Uo"]],
    ]);
    const ops = (k: { graph: { nodes: readonly { op: string }[] } }) => k.graph.nodes.map((n) => n.op);
    expect(ops(s.forward.before).filter((o) => o === "gemm")).toHaveLength(1);
    expect(ops(s.forward.step).filter((o) => o === "gemm")).toHaveLength(1);
    // Backward per step: one transposed GEMM for the previous state's gradient; the weight gradients are
    // two GEMMs over all steps after the loop, and the input gradient one.
    expect(ops(s.backward.loop).filter((o) => o.startsWith("gemm"))).toEqual(["gemmT"]);
    expect(s.backward.loop.outers).toHaveLength(0);
    expect(s.backward.after.outers).toHaveLength(2);
    expect(ops(s.backward.after).filter((o) => o === "gemmT")).toHaveLength(1);
  });
  it("GRU and LSTM: one launch per forward step, and one before the loop (the GEMMs' epilogues)", () => {
    for (const name of ["lstm", "gru"]) {
      const s = schedule(name);
      expect(launches(s.forward.step)).toBe(1);
      expect(launches(s.forward.before)).toBe(1);
      // The backward step's GEMM has no loop after it: the elementwise work, then the GEMM.
      expect(launches(s.backward.loop)).toBeGreaterThanOrEqual(2);
    }
  });
  it("MGU: the step splits where the reset feeds the recurrent matmul, and nowhere else", () => {
    const s = schedule("mgu");
    expect(s.packs.map((p) => p.phase)).toEqual(["before", "step", "step"]);
    // Two GEMMs per step, each with the loop after it as its epilogue.
    expect(launches(s.forward.step)).toBe(2);
    expect(s.forward.step.fuse).toHaveLength(2);
  });
  it("IndRNN: no matmul on the state, so one elementwise launch per step", () => {
    const s = schedule("indrnn");
    expect(s.packs.every((p) => p.phase === "before")).toBe(true);
    expect(launches(s.forward.step)).toBe(1);
  });
});

describe("cellc compile --emit ast", () => {
  it("prints the AST of rnn.cell with line:col spans", () => {
    const out = execFileSync(
      process.execPath,
      ["bin/cellc.js", "compile", "examples/cells/rnn.cell", "--emit", "ast"],
      { encoding: "utf8" },
    );
    expect(JSON.parse(out).cells[0].name).toBe("rnn");
    expectGolden("test/golden/rnn.ast.txt", out);
  });
});
