// Which readout rows a batch's loss counts and how it averages them, for steps [t0, t1) of a batch of B
// sequences with lengths `lens`: the same on the host and on a device.

export interface LossRows {
  /** Readout rows: B (on the last step) or (t1 - t0) * B (on every step). */
  readonly rows: number;
  /** Whether each row counts. */
  readonly valid: Uint8Array;
  /** On the last step: the chunk step of each sequence's last valid step, or -1 (not in this chunk). */
  readonly lastAt?: Int32Array;
}

/**
 * 1 / (the number of terms of the batch's mean): rows that count (times O for per-feature losses), so
 * that summing chunks (truncated BPTT) gives the mean over the whole batch.
 */
export function lossScale(
  on: "last" | "every",
  perFeature: boolean,
  T: number,
  B: number,
  O: number,
  lens: Int32Array | undefined,
): number {
  const len = (b: number) => (lens ? lens[b]! : T);
  let terms = 0;
  for (let b = 0; b < B; b++) terms += on === "last" ? (len(b) > 0 ? 1 : 0) : Math.min(len(b), T);
  if (perFeature) terms *= O;
  return terms ? 1 / terms : 0;
}

export function lossRows(
  on: "last" | "every",
  T: number,
  B: number,
  lens: Int32Array | undefined,
  t0 = 0,
  t1 = T,
): LossRows {
  const len = (b: number) => (lens ? lens[b]! : T);
  const Tc = t1 - t0;
  if (on === "every") {
    const valid = new Uint8Array(Tc * B);
    for (let t = 0; t < Tc; t++) for (let b = 0; b < B; b++) valid[t * B + b] = t0 + t < len(b) ? 1 : 0;
    return { rows: Tc * B, valid };
  }
  const valid = new Uint8Array(B);
  const lastAt = new Int32Array(B).fill(-1);
  for (let b = 0; b < B; b++) {
    const t = len(b) - 1 - t0;
    if (t < 0 || t >= Tc) continue;
    lastAt[b] = t;
    valid[b] = 1;
  }
  return { rows: B, valid, lastAt };
}
