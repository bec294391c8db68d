import type { KernelName } from "../artifact/schedule.js";

/** What an executor does with one kernel of the schedule at step t: run it, or run one of its masks. */
export interface KernelExecutor {
  run(kernel: KernelName, t: number): void;
  /**
   * Runs a kernel at every step from `from` toward `to` (excluded), in that order, as one job if the
   * executor can (a thread pool that needs no barrier between steps); false when it did nothing.
   */
  runSteps?(kernel: KernelName, from: number, to: number): boolean;
  mask(kernel: KernelName, which: "premask" | "postmask", t: number): void;
}

/**
 * The time loop, written once for every backend: the executor only runs kernels. Forward: the hoisted
 * kernel over all steps, then the step kernel at t = 0..T-1 (rows past their length carried by its mask).
 * Backward: the loop kernel at t = T-1..0 between its masks, then the deferred kernel over all steps.
 */
export function walkForward(x: KernelExecutor, T: number, masked: boolean): void {
  if (T === 0) return;
  x.run("before", 0);
  if (!masked && x.runSteps?.("step", 0, T)) return;
  for (let t = 0; t < T; t++) {
    x.run("step", t);
    if (masked) x.mask("step", "postmask", t);
  }
}

export function walkBackward(x: KernelExecutor, T: number, masked: boolean): void {
  if (T === 0) return;
  if (masked || !x.runSteps?.("loop", T - 1, -1))
    for (let t = T - 1; t >= 0; t--) {
      if (masked) x.mask("loop", "premask", t);
      x.run("loop", t);
      if (masked) x.mask("loop", "postmask", t);
    }
  x.run("after", 0);
}
