import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { compileCell, Model } from "../../api/index.js";
import { Rng } from "../../runtime/init.js";
import { builtinCellFiles, nodeHost } from "../helpers.js";
import { checkProgram } from "../../compiler/driver.js";
import { gradcheckModel } from "./check.js";

describe("gradients of every built-in cell against central finite differences (float64)", () => {
  for (const file of builtinCellFiles()) {
    const names = checkProgram(file, nodeHost).cellNames;
    for (const name of names)
      it(`${file} ${name}`, () => {
        const cell = compileCell(readFileSync(file, "utf8"), { file, cell: name, host: nodeHost });
        const D = name === "sru" ? 4 : 3;
        const model = new Model(cell, { dtype: "f64", dims: { D, H: 4 }, seed: 7 });
        // Larger parameters than the initialisers give, so that saturating gates are exercised too.
        const rng = new Rng(3);
        for (const t of model.params.values())
          for (let i = 0; i < t.data.length; i++) t.data[i] += 0.3 * (2 * rng.next() - 1);
        const failures = gradcheckModel(model, cell.ir.inputs[0]!.name, D, [4, 2, 3], 11);
        expect(failures).toEqual([]);
      });
  }
});
