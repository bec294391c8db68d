import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { main } from "../../cli/main.js";
import { STAGES, StageError, emitStage } from "../../compiler/stage.js";

/** emitStage (what the playground prints) against `cellc compile --emit`, run in this process. */
const DIR = "examples/cells";
const host = { read: (p: string) => readFileSync(join(DIR, p), "utf8") };

async function cli(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await main(argv, { out: (s) => (out += s), err: (s) => (err += s) });
  return { code, out, err };
}

describe("emitStage prints each stage as `cellc compile --emit` does", () => {
  for (const file of readdirSync(DIR).filter((f) => f.endsWith(".cell")))
    it(file, async () => {
      const source = readFileSync(join(DIR, file), "utf8");
      const cells = [...source.matchAll(/^cell (\w+)/gm)].map((m) => m[1]!);
      // Every cell of a file with several; the file alone otherwise (as without --cell).
      for (const cell of cells.length > 1 ? cells : [undefined])
        for (const stage of STAGES) {
          const argv = ["compile", join(DIR, file), "--emit", stage, ...(cell ? ["--cell", cell] : [])];
          const r = await cli(argv);
          expect(r.code, r.err).toBe(0);
          const text = emitStage(source, stage, cell, {
            file: join(DIR, file),
            host: { read: (p) => host.read(p.slice(DIR.length + 1)) },
          });
          expect(text, `${file} ${cell ?? ""} ${stage}`).toBe(r.out);
        }
    });

  it("throws the CLI's diagnostics for a source with errors, or an unknown cell", async () => {
    const bad = "cell c {\n  input x[D]\n  state h[H]\n  h' = tanh(h + y)\n  output h'\n}\n";
    expect(() => emitStage(bad, "ir", undefined, { file: "bad.cell" })).toThrow(StageError);
    try {
      emitStage(bad, "ir", undefined, { file: "bad.cell" });
    } catch (e) {
      expect((e as StageError).diagnostics.map((d) => d.code)).toEqual(["E010"]);
      expect((e as StageError).message).toContain("--> bad.cell:4:17");
    }
    const lstm = readFileSync(join(DIR, "lstm.cell"), "utf8");
    expect(() => emitStage(lstm, "js", "nope", { file: "lstm.cell" })).toThrow(/no cell named 'nope'/);
  });
});
