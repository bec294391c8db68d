import { readdirSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { checkProgram } from "../../compiler/driver.js";
import { renderAll } from "../../compiler/diag/diagnostic.js";
import { CATALOGUE } from "../../compiler/diag/catalogue.js";
import { expectGolden, nodeHost } from "../helpers.js";

const files = readdirSync("test/errors")
  .filter((f) => f.endsWith(".cell"))
  .sort();

describe("error baselines: one bad file per diagnostic code", () => {
  it("has at least 25 baselines", () => expect(files.length).toBeGreaterThanOrEqual(25));
  for (const f of files) {
    const code = f.replace(/\.cell$/, "");
    it(code, () => {
      const r = checkProgram(`test/errors/${f}`, nodeHost);
      // The code the file is named for must be among what is reported, with the catalogue's severity.
      const hit = r.diagnostics.find((d) => d.code === code);
      expect(hit, `expected ${code} in ${r.diagnostics.map((d) => d.code).join(",")}`).toBeDefined();
      expect(hit!.severity).toBe(CATALOGUE[code as keyof typeof CATALOGUE].severity);
      const text = renderAll(r.diagnostics, r.program.sources);
      expect(text).toMatch(new RegExp(`test/errors/${f}:\\d+:\\d+`));
      expectGolden(`test/errors/${code}.txt`, text + "\n");
    });
  }
});
