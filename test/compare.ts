import type { Tensor } from "../api/index.js";

/**
 * Every way `actual` differs from `reference` beyond |a - r| <= atol + rtol |r|: missing or extra tensors,
 * shapes, and the worst excess of each tensor. A NaN on either side counts as an infinite excess.
 */
export function mismatches(
  actual: ReadonlyMap<string, Tensor>,
  reference: ReadonlyMap<string, Tensor>,
  atol: number,
  rtol: number,
): string[] {
  const problems: string[] = [];
  for (const [name, r] of reference) {
    const a = actual.get(name);
    if (!a) {
      problems.push(`${name}: missing`);
      continue;
    }
    if (a.shape.join() !== r.shape.join()) {
      problems.push(`${name}: shape [${a.shape}] vs [${r.shape}]`);
      continue;
    }
    let worst = 0;
    for (let i = 0; i < r.data.length; i++) {
      const excess = Math.abs(a.data[i]! - r.data[i]!) - (atol + rtol * Math.abs(r.data[i]!));
      worst = Number.isNaN(excess) ? Infinity : Math.max(worst, excess);
    }
    if (worst > 0) problems.push(`${name}: off by ${worst} beyond tolerance`);
  }
  for (const name of actual.keys()) if (!reference.has(name)) problems.push(`${name}: not in the reference`);
  return problems;
}
