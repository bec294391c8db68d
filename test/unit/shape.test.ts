import { describe, expect, it } from "vitest";
import { hasErrors } from "../../compiler/diag/diagnostic.js";
import { printType, dimNamed, dimAdd, dimEq, dim, evalDim } from "../../artifact/shape.js";
import { checkSource } from "../helpers.js";

const cell = (body: string, extra = "") => `${extra}
cell t {
  input x[D]
  state h[H]
${body}
  output h'
}`;

function typeOf(body: string, eq: string, extra = "") {
  const r = checkSource(cell(body, extra));
  const errs = r.diagnostics.filter((d) => d.severity === "error");
  if (errs.length) throw new Error(errs.map((d) => d.message).join("; "));
  return printType(r.checked.get("t")!.equations.get(eq)!.type);
}

function codes(body: string, extra = "") {
  return checkSource(cell(body, extra)).diagnostics.map((d) => d.code);
}

describe("dimension arithmetic", () => {
  it("adds linear forms and compares them regardless of order", () => {
    const a = dimAdd(dimNamed("H"), dimNamed("D"));
    const b = dimAdd(dimNamed("D"), dimNamed("H"));
    expect(dimEq(a, b)).toBe(true);
    expect(dimEq(a, dimNamed("H"))).toBe(false);
    expect(evalDim(dim({ H: 2, D: 1 }, 3), { H: 5, D: 7 })).toBe(20);
  });
});

describe("shape inference", () => {
  it("a matvec has the rows of the weight", () => {
    expect(typeOf("param W : [H, D]\n g = W @ x\n h' = g", "g")).toBe("[H]");
  });
  it("a concatenation sums its lengths, and a weight over it must match", () => {
    expect(typeOf("param W : [H, H + D]\n g = [h, x]\n h' = W @ g", "g")).toBe("[D + H]");
    expect(typeOf("param W : [H, D + H]\n h' = W @ [h, x]", "h'")).toBe("[H]");
    expect(codes("param W : [H, 2*H]\n h' = W @ [h, x]")).toContain("E041");
  });
  it("per-row scalars broadcast over vectors", () => {
    expect(typeOf("m = mean(h)\n h' = h - m", "m")).toBe("[]");
    expect(typeOf("m = mean(h)\n h' = h - m", "h'")).toBe("[H]");
  });
  it("peephole and IndRNN products of a vector parameter and a state", () => {
    expect(typeOf("param u : [H]\n param W : [H, D]\n h' = relu(W @ x + u * h)", "h'")).toBe("[H]");
  });
  it("vectors of different dimensions do not mix", () => {
    expect(codes("h' = h + x")).toContain("E040");
  });
  it("the weight of a matvec must take the vector's length", () => {
    const r = checkSource(cell("param Wi : [H, D]\n h' = Wi @ h"));
    const d = r.diagnostics.find((x) => x.code === "E041")!;
    expect(d.message).toContain("[H, D]");
    expect(d.message).toContain("[H]");
    expect(d.notes.map((n) => n.span?.start)).toHaveLength(2);
  });
  it("dimension names are distinct even when they would unify", () => {
    expect(codes("param W : [H, E]\n h' = W @ x")).toContain("E041");
  });
  it("user functions are shape-polymorphic: each call is checked with its own arguments", () => {
    const fnDef = "fn lin(W, v, b) = W @ v + b";
    expect(
      typeOf(
        "param W : [H, D]\n param U : [H, H]\n param b : [H]\n a = lin(W, x, b)\n h' = lin(U, a, b)",
        "a",
        fnDef,
      ),
    ).toBe("[H]");
    expect(codes("param W : [H, D]\n param b : [D]\n h' = lin(W, x, b)", fnDef)).toContain("E040");
  });
  it("next-state values must have the state's shape; a scalar broadcasts", () => {
    expect(codes("param W : [D, D]\n h' = W @ x")).toContain("E045");
    expect(hasErrors(checkSource(cell("h' = 0")).diagnostics)).toBe(false);
  });
  it("reductions take vectors only", () => {
    expect(codes("h' = h + sum(mean(h))")).toContain("E046");
  });
  it("parameterised activations need numeric constants, which may be folded", () => {
    expect(hasErrors(checkSource(cell("h' = elu(h, 2 * 0.5)")).diagnostics)).toBe(false);
    expect(codes("h' = elu(h, h)")).toContain("E029");
  });
});
