import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { buildCellIR, checkProgram } from "../../compiler/driver.js";
import { hasErrors } from "../../compiler/diag/diagnostic.js";
import { printCell } from "../../compiler/ir/print.js";
import { builtinCellFiles, expectGolden, nodeHost } from "../helpers.js";
import { buildStepKernels } from "../../compiler/autodiff/grad.js";
import { printGradIR } from "../../compiler/autodiff/print.js";
import { emitModuleJs } from "../../compiler/codegen/js.js";

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

describe("emitted backward IR and JS kernels of the reference cells", () => {
  for (const name of ["rnn", "lstm", "gru"]) {
    const file = `examples/cells/${name}.cell`;
    it(name, () => {
      const r = checkProgram(file, nodeHost);
      const ir = buildCellIR(r.checked.get(name)!);
      const kernels = buildStepKernels(ir);
      expectGolden(`test/golden/${name}.grad-ir.txt`, printGradIR(name, kernels, r.program.sources));
      expectGolden(`test/golden/${name}.js.txt`, emitModuleJs([kernels.forward, kernels.backward], ir.dims));
    });
  }
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
