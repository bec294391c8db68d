import { describe, expect, it } from "vitest";
import { renderAll } from "../../compiler/diag/diagnostic.js";
import { checkSource } from "../helpers.js";

describe("all errors of a file at once", () => {
  it("reports every syntax error, and the semantic errors of cells the syntax errors do not touch", () => {
    const r = checkSource(`cell a {
  input x[D]
  state h[H]
  h' = tanh(h +)
  output h'
}

cell b {
  input x[D]
  state h[H]
  param W : [H, D]
  h' = tanh(W @ h)
  output h'
}

cell c {
  state h[H]
  h' = h * * 2
  output h'
}
`);
    // Sorted by position: the second cell's error comes between the two syntax errors.
    expect(r.diagnostics.map((d) => d.code)).toEqual(["E002", "E041", "E002"]);
    const text = renderAll(r.diagnostics, r.program.sources);
    expect(text).toContain("test.cell:4:16");
    expect(text).toContain("test.cell:12:13");
    expect(text).toContain("test.cell:18:12");
  });
  it("does not check a cell that extends one with a syntax error", () => {
    const r = checkSource(`cell a {
  state h[H]
  h' = tanh(h +)
  output h'
}
cell b extends a {
  h' = sigmoid(q)
}
`);
    expect(r.diagnostics.map((d) => d.code)).toEqual(["E002"]);
  });
  it("checks no cell when a function has a syntax error", () => {
    const r = checkSource(`fn f(v) = v +
cell a {
  state h[H]
  h' = f(h) + nothing
  output h'
}
`);
    expect(r.diagnostics.every((d) => d.code === "E002")).toBe(true);
  });
});
