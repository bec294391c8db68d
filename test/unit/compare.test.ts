import { describe, expect, it } from "vitest";
import { tensor } from "../../api/index.js";
import { mismatches } from "../compare.js";

describe("the tolerance comparison the reference and parity tests use", () => {
  const ref = new Map([["a", tensor("f64", [2], [1, -2])]]);
  it("accepts values within atol + rtol |reference|", () => {
    expect(
      mismatches(new Map([["a", tensor("f64", [2], [1 + 1.9e-3, -2 - 2.9e-3])]]), ref, 1e-3, 1e-3),
    ).toEqual([]);
  });
  it("reports excess, NaN, shape, missing and extra tensors", () => {
    expect(mismatches(new Map([["a", tensor("f64", [2], [1.01, -2])]]), ref, 1e-3, 1e-3)[0]).toMatch(
      /a: off by/,
    );
    expect(mismatches(new Map([["a", tensor("f64", [2], [NaN, -2])]]), ref, 1, 1)[0]).toMatch(
      /off by Infinity/,
    );
    expect(mismatches(ref, new Map([["a", tensor("f64", [2], [NaN, -2])]]), 1, 1)[0]).toMatch(
      /off by Infinity/,
    );
    expect(mismatches(new Map([["a", tensor("f64", [1, 2], [1, -2])]]), ref, 1, 1)[0]).toMatch(/shape/);
    expect(mismatches(new Map(), ref, 1, 1)).toEqual(["a: missing"]);
    expect(mismatches(new Map([...ref, ["b", ref.get("a")!]]), ref, 1, 1)).toEqual([
      "b: not in the reference",
    ]);
  });
});
