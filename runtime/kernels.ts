// The one place where generated JS from an artifact becomes functions. The runtime runs only kernels it
// can trust: the text is checked by verify.ts, and what runs is the verifier's rebuilt text.
import { CellcError } from "./tensor.js";
import { verifyKernelJs } from "./verify.js";

/**
 * Evaluates the JS kernel module `text` (its top-level `export function` / `export const` declarations)
 * and returns the named ones; each must be a function or an object. Text that is not the JS cellc
 * generates is refused before anything of it runs.
 */
export function loadJsModule(text: string, names: readonly string[], what: string): Record<string, unknown> {
  const v = verifyKernelJs(text, what);
  for (const n of names) if (!v.names.has(n)) throw new CellcError(`the ${what} kernels have no '${n}'`);
  const body = `"use strict";\n${v.code}\nreturn { ${names.join(", ")} };`;
  let mod: Record<string, unknown>;
  try {
    mod = new Function(body)() as Record<string, unknown>;
  } catch (e) {
    throw new CellcError(`the ${what} kernels do not load: ${(e as Error).message}`);
  }
  for (const n of names) {
    const t = typeof mod[n];
    if (t !== "function" && t !== "object") throw new CellcError(`the ${what} kernels have no '${n}'`);
  }
  return mod;
}
