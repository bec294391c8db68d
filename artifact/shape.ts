/**
 * Symbolic shapes. A dimension is a linear form over the cell's dimension names (`H + D`, `2 * H`, `4`), so
 * that `W : [H, H + D]` and `[h, x]` agree without knowing H or D. Per-step values are vectors (rank 1) or
 * per-row scalars (rank 0) of a batch; parameters may be matrices (rank 2) and are not batched.
 */
export interface Dim {
  readonly terms: Readonly<Record<string, number>>; // name -> coefficient, no zero entries, sorted keys
  readonly c: number;
}

export interface Type {
  readonly dims: readonly Dim[]; // rank = dims.length
  readonly batched: boolean;
}

/** Terms are keyed by user names, so they live in objects without a prototype (`__proto__` is a name). */
function newTerms(from?: Readonly<Record<string, number>>): Record<string, number> {
  return Object.assign(Object.create(null) as Record<string, number>, from);
}

export function dim(terms: Readonly<Record<string, number>>, c = 0): Dim {
  const out = newTerms();
  for (const k of Object.keys(terms).sort()) if (terms[k]) out[k] = terms[k]!;
  return { terms: out, c };
}
export const dimNamed = (name: string): Dim => dim({ [name]: 1 });
export const dimConst = (c: number): Dim => dim({}, c);

export function dimAdd(a: Dim, b: Dim): Dim {
  const t = newTerms(a.terms);
  for (const [k, v] of Object.entries(b.terms)) t[k] = (t[k] ?? 0) + v;
  return dim(t, a.c + b.c);
}
export function dimSub(a: Dim, b: Dim): Dim {
  const t = newTerms(a.terms);
  for (const [k, v] of Object.entries(b.terms)) t[k] = (t[k] ?? 0) - v;
  return dim(t, a.c - b.c);
}
export function dimEq(a: Dim, b: Dim): boolean {
  return dimKey(a) === dimKey(b);
}
export function dimKey(d: Dim): string {
  return printDim(d);
}

export function printDim(d: Dim): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(d.terms)) parts.push(v === 1 ? k : `${v}*${k}`);
  if (d.c !== 0 || parts.length === 0) parts.push(String(d.c));
  return parts.join(" + ");
}

export function evalDim(d: Dim, sizes: Readonly<Record<string, number>>): number {
  let v = d.c;
  for (const [k, coeff] of Object.entries(d.terms)) {
    const s = Object.hasOwn(sizes, k) ? sizes[k] : undefined;
    if (s === undefined) throw new Error(`dimension '${k}' is not bound`);
    v += coeff * s;
  }
  return v;
}

/** The dimensions of a value as it is stored: the batch axis `B` first when it has one. */
export function storedShape(t: Type): string[] {
  return [...(t.batched ? ["B"] : []), ...t.dims.map(printDim)];
}

export function printType(t: Type): string {
  return `[${t.dims.map(printDim).join(", ")}]`;
}

export function typeEq(a: Type, b: Type): boolean {
  return (
    a.batched === b.batched && a.dims.length === b.dims.length && a.dims.every((d, i) => dimEq(d, b.dims[i]!))
  );
}
