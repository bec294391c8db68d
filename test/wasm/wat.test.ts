// `cellc compile --emit wat`: the text of the cell's wasm module, printed by wabt, with its step lists.
import { readFileSync } from "node:fs";
import { describe, expect, test } from "vitest";
import { main } from "../../cli/main.js";
import { fromBase64 } from "../../artifact/wasm.js";
import { compile } from "../../compiler/compile.js";

async function cellc(...argv: string[]) {
  let out = "";
  let err = "";
  const code = await main(argv, { out: (s) => void (out += s), err: (s) => void (err += s) });
  return { code, out, err };
}

describe("cellc compile --emit wat", () => {
  test.each(["lstm", "gru", "indrnn"])(
    "%s: the text assembles back into the module cellc emits",
    async (name) => {
      const file = `examples/cells/${name}.cell`;
      const r = await cellc("compile", file, "--emit", "wat");
      expect(r.err).toBe("");
      expect(r.code).toBe(0);
      // The step list names every exported function the module has, and nothing else.
      const module = r.out.slice(r.out.indexOf("(module"));
      const exported = [...module.matchAll(/\(export "(k\d+_\d+)"\)/g)].map((m) => m[1]);
      const called = [...r.out.matchAll(/^;; {3}call (k\d+_\d+)/gm)].map((m) => m[1]);
      expect(new Set(called)).toEqual(new Set(exported));
      // Assembled again by wabt (an outside assembler), the text gives a valid module with the same code.
      const wabt = await (await import("wabt")).default();
      const parsed = wabt.parseWat("k.wat", module, { simd: true, threads: true });
      const buffer = new Uint8Array(parsed.toBinary({}).buffer);
      parsed.destroy();
      expect(WebAssembly.validate(buffer)).toBe(true);
      const ours = compile(readFileSync(file, "utf8"), { file }).artifact!.wasm!;
      const original = new WebAssembly.Module(fromBase64(ours.module));
      const again = new WebAssembly.Module(buffer);
      expect(WebAssembly.Module.exports(again)).toEqual(WebAssembly.Module.exports(original));
    },
  );

  test("a cell with errors prints its diagnostics and no text", async () => {
    const r = await cellc("compile", "test/errors/E010.cell", "--emit", "wat");
    expect(r.code).toBe(1);
    expect(r.out).toBe("");
    expect(r.err).toMatch(/error\[E0/);
  });
});
