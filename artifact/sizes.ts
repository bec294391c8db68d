// Binding a cell's symbolic dimensions to sizes, from tensors' shapes and from a stack's layers: pure
// functions over the artifact's types, used by the compiler (a network's parameter shapes) and the
// runtimes (a model's given tensors).
import { evalDim, printDim, type Dim, type Type } from "./shape.js";
import { CellcError, showShape } from "./tensor.js";
import type { Signature } from "./schedule.js";
import { shown } from "./validate.js";

/** Binds a dimension made of a single name from a known size; checks it against an earlier binding. */
export function bindDim(sizes: Record<string, number>, d: Dim, size: number, what: string): void {
  const names = Object.keys(d.terms);
  if (names.length === 1 && d.c === 0 && d.terms[names[0]!] === 1) {
    const n = names[0]!;
    if (sizes[n] !== undefined && sizes[n] !== size)
      throw new CellcError(`dimension ${n} is ${sizes[n]} elsewhere but ${size} in ${what}`);
    sizes[n] = size;
    return;
  }
  // A sum such as D + H, once all names but one are known, gives the last one.
  const unknown = names.filter((n) => sizes[n] === undefined);
  if (unknown.length !== 1) return;
  const n = unknown[0]!;
  let rest = d.c;
  for (const m of names) if (m !== n) rest += d.terms[m]! * sizes[m]!;
  const v = (size - rest) / d.terms[n]!;
  if (Number.isInteger(v) && v > 0) sizes[n] = v;
}

export function bindShape(
  sizes: Record<string, number>,
  t: Type,
  shape: readonly number[],
  what: string,
): void {
  if (shape.length !== t.dims.length)
    throw new CellcError(
      `${what} has shape ${showShape(shape)}; expected ${showShape(t.dims.map(printDim))}`,
    );
  t.dims.forEach((d, i) => {
    const names = Object.keys(d.terms);
    const n = names[0]!;
    if (names.length === 1 && sizes[n] !== undefined && evalDim(d, sizes) !== shape[i])
      throw new CellcError(
        `${what} has shape ${showShape(shape)}; expected ${showShape(t.dims.map(printDim))} with ${n} = ${sizes[n]}`,
      );
    bindDim(sizes, d, shape[i]!, what);
  });
}

export function resolveShape(t: Type, sizes: Record<string, number>, what: string): number[] {
  return t.dims.map((d) => {
    for (const n of Object.keys(d.terms))
      if (sizes[n] === undefined)
        throw new CellcError(
          `dimension ${n} of ${what} ${showShape(t.dims.map(printDim))} is not known: give a tensor that has it, or its size`,
        );
    return evalDim(d, sizes);
  });
}

export function shapeText(t: Type, shape: readonly number[]): string {
  return `${showShape(t.dims.map(printDim))} = ${showShape(shape)}`;
}

export function checkShape(
  actual: readonly number[],
  expected: readonly number[],
  what: string,
  t?: Type,
  lead: string[] = [],
): void {
  if (actual.length === expected.length && actual.every((v, i) => v === expected[i])) return;
  const symbolic = t ? ` (${showShape([...lead, ...t.dims.map(printDim)])})` : "";
  throw new CellcError(`${what} has shape ${showShape(actual)}; expected ${showShape(expected)}${symbolic}`);
}

/** Sizes with no prototype: dimension names come from .cell files, and `constructor` is just a name. */
export const sizesOf = (from?: Readonly<Record<string, number>>): Record<string, number> =>
  Object.assign(Object.create(null) as Record<string, number>, from);

/**
 * The dimension sizes of each layer of a stack of `layers` cells in `directions` directions: layer 0 has
 * `first`; the input of layer l > 0 is the output of layer l - 1, both directions concatenated.
 */
export function stackSizes(
  sig: Signature,
  first: Readonly<Record<string, number>>,
  layers: number,
  directions: number,
): Record<string, number>[] {
  const out = [sizesOf(first)];
  for (let l = 1; l < layers; l++) {
    const sizes = sizesOf(first);
    for (const d of sig.inputs[0]!.type.dims) for (const n of Object.keys(d.terms)) delete sizes[n];
    const outDim = sig.outputs[0]!.type.dims[0]!;
    bindDim(
      sizes,
      sig.inputs[0]!.type.dims[0]!,
      evalDim(outDim, out[l - 1]!) * directions,
      `the input of layer ${l}`,
    );
    out.push(sizes);
  }
  return out;
}

/** The largest dimension size a caller may give: far past any real one, and exact in products. */
export const MAX_DIM = 2 ** 32;

/** Dimension sizes given by a caller: an object of whole numbers from 1 to MAX_DIM, by name. */
export function checkDims(dims: unknown, what: string): Readonly<Record<string, number>> {
  if (typeof dims !== "object" || dims === null || Array.isArray(dims))
    throw new CellcError(`${what} must be an object of sizes by dimension name`);
  for (const [k, v] of Object.entries(dims))
    if (!Number.isSafeInteger(v) || (v as number) < 1 || (v as number) > MAX_DIM)
      throw new CellcError(`${what}: ${k} must be a whole number from 1 to ${MAX_DIM}, got ${shown(v)}`);
  return dims as Readonly<Record<string, number>>;
}
