import { readdirSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { CATALOGUE } from "../../compiler/diag/catalogue.js";
import { renderAll } from "../../compiler/diag/diagnostic.js";
import { compileNetwork } from "../../compiler/network/compile.js";
import { expectGolden, nodeHost } from "../helpers.js";

const dir = "test/model/errors";
const files = readdirSync(dir)
  .filter((f) => f.endsWith(".cell"))
  .sort();

/** Sizes from a first line `# dims: V=8, H=16`, as the trainer would pass them. */
function dimsOf(text: string): Record<string, number> {
  const m = /^# dims: (.*)$/m.exec(text);
  const dims: Record<string, number> = {};
  for (const kv of m?.[1]?.split(",") ?? []) {
    const [k, v] = kv.split("=");
    dims[k!.trim()] = Number(v);
  }
  return dims;
}

/** Codes reported without a location: about the whole file, they name what was asked for instead. */
const FILE_LEVEL = new Set(["E089"]);

describe("model error baselines: one bad file per diagnostic code", () => {
  it("every model code E070-E090 has a baseline", () => {
    const codes = Object.keys(CATALOGUE).filter((c) => c >= "E070" && c <= "E090");
    expect(codes).toHaveLength(21);
    expect(files.map((f) => f.replace(/\.cell$/, ""))).toEqual(codes);
  });
  for (const f of files) {
    const code = f.replace(/\.cell$/, "");
    it(code, () => {
      const path = `${dir}/${f}`;
      const r = compileNetwork(undefined, {
        file: path,
        host: nodeHost,
        dims: dimsOf(readFileSync(path, "utf8")),
      });
      const hit = r.diagnostics.find((d) => d.code === code);
      expect(hit, `expected ${code} in ${r.diagnostics.map((d) => d.code).join(",")}`).toBeDefined();
      expect(hit!.severity).toBe(CATALOGUE[code as keyof typeof CATALOGUE].severity);
      expect(r.artifact).toBeUndefined();
      const text = renderAll(r.diagnostics, r.sources);
      if (!FILE_LEVEL.has(code)) {
        expect(hit!.span).toBeDefined();
        expect(text).toMatch(new RegExp(`${dir}/${f}:\\d+:\\d+`));
      }
      expectGolden(`${dir}/${code}.txt`, text + "\n");
    });
  }
});
