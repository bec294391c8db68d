import { describe, expect, it } from "vitest";
import { buildCellIR, checkProgram } from "../../compiler/driver.js";
import { hasErrors } from "../../compiler/diag/diagnostic.js";
import { printCell } from "../../compiler/ir/print.js";
import { builtinCellFiles, expectGolden, nodeHost } from "../helpers.js";

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
