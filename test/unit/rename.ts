import { cellLexer } from "../../grammar/tokens.js";
import { BUILTINS, INITIALISERS } from "../../compiler/check/builtins.js";

/** The names a .cell source gives (cells, functions, parameters, inputs, states, dimensions, equations). */
export function userNames(src: string): string[] {
  const out: string[] = [];
  forEachName(src, (name) => {
    if (!out.includes(name)) out.push(name);
  });
  return out;
}

/** The source with each user name replaced through `map` (names not in it stay). */
export function renameAll(src: string, map: ReadonlyMap<string, string>): string {
  let out = "";
  let at = 0;
  forEachName(src, (name, start) => {
    out += src.slice(at, start) + (map.get(name) ?? name);
    at = start + name.length;
  });
  return out + src.slice(at);
}

function forEachName(src: string, f: (name: string, start: number) => void): void {
  const toks = cellLexer.tokenize(src).tokens;
  const fns = new Set<string>();
  toks.forEach((t, i) => {
    if (t.tokenType.name === "Ident" && toks[i - 1]?.tokenType.name === "Fn") fns.add(t.image);
  });
  toks.forEach((t, i) => {
    if (t.tokenType.name !== "Ident") return;
    const prev = toks[i - 1]?.tokenType.name;
    const next = toks[i + 1]?.tokenType.name;
    if (prev === "Tilde" && Object.hasOwn(INITIALISERS, t.image)) return;
    if (next === "LParen" && Object.hasOwn(BUILTINS, t.image) && !fns.has(t.image)) return;
    f(t.image, t.startOffset);
  });
}
