import { describe, expect, it } from "vitest";
import { compileCell, Model } from "../../api/index.js";
import { OPS, type OpKind } from "../../compiler/ops/ops.js";
import { gradcheckModel } from "./check.js";
import { CASES, DIM_CASES, caseCell } from "./cases.js";

describe("gradient of every primitive against central finite differences (float64)", () => {
  it("covers every op kind", () => {
    const covered = new Set(Object.values(CASES).flatMap((c) => c.ops));
    const missing = (Object.keys(OPS) as OpKind[]).filter((k) => !covered.has(k));
    expect(missing).toEqual([]);
  });
  for (const [name, c] of Object.entries(CASES))
    it(name, () => {
      const cell = compileCell(caseCell(c.eq));
      const model = new Model(cell, { dtype: "f64", dims: { D: 3, H: 4 }, seed: 2 });
      expect(gradcheckModel(model, "x", 3, [4, 1, 3], 9)).toEqual([]);
    });
  for (const [name, src] of Object.entries(DIM_CASES))
    it(name, () => {
      const model = new Model(compileCell(src), { dtype: "f64", dims: { D: 3, H: 2 }, seed: 2 });
      expect(gradcheckModel(model, "x", 3, [4, 1, 3], 9)).toEqual([]);
    });
});
