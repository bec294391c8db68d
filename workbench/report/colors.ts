// One colour per cell, by its name, the same in every picture and every run: the built-in rnn, lstm and
// gru always have theirs, and another name always hashes to the same one of the rest, unless a cell
// earlier in the same picture has it already (two cells with one name, or a clash), when it takes the
// next free one.

/** Vega's category10 ("tableau10"), as its default colour scheme draws it. */
export const PALETTE = [
  "#4c78a8",
  "#f58518",
  "#e45756",
  "#72b7b2",
  "#54a24b",
  "#eeca3b",
  "#b279a2",
  "#ff9da6",
  "#9d755d",
  "#bab0ac",
] as const;

const FIXED: Readonly<Record<string, number>> = { rnn: 0, lstm: 1, gru: 2 };

/** FNV-1a of the name's UTF-16 code units: stable across runs, platforms and versions. */
function hash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/** The colour of each cell name, in order; names may repeat (each then gets its own colour). */
export function cellColors(names: readonly string[]): string[] {
  const taken = new Set<number>();
  return names.map((name) => {
    const home = Object.hasOwn(FIXED, name) ? FIXED[name]! : 3 + (hash(name) % (PALETTE.length - 3));
    let slot = home;
    for (let k = 0; taken.has(slot) && k < PALETTE.length; k++) slot = (home + k + 1) % PALETTE.length;
    taken.add(slot);
    return PALETTE[slot]!;
  });
}
