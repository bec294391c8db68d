// The one place where generated JS from an artifact becomes functions. The runtime runs only kernels it
// can trust: see verify.ts, which this calls first.
import { CellcError } from "./tensor.js";

/**
 * Evaluates the JS kernel module `text` (its top-level `export function` / `export const` declarations)
 * and returns the named ones; each must be a function or an object.
 */
export function loadJsModule(text: string, names: readonly string[], what: string): Record<string, unknown> {
  const body = text.replace(/^export (function|const) /gm, "$1 ") + `\nreturn { ${names.join(", ")} };`;
  let mod: Record<string, unknown>;
  try {
    mod = new Function(body)() as Record<string, unknown>;
  } catch (e) {
    throw new CellcError(`the ${what} kernels do not load: ${(e as Error).message}`);
  }
  for (const n of names) if (mod[n] === undefined) throw new CellcError(`the ${what} kernels have no '${n}'`);
  return mod;
}
