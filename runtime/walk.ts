import type { Artifact } from "../artifact/artifact.js";
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
  /** The scans of the artifact's scan states (Artifact.scans) over all T steps, masks included. */
  scan(direction: "forward" | "backward"): void;
}

/** Whether there are scans, and whether the step and loop kernels run once over all T*B rows. */
export interface WalkPlan {
  readonly scans: boolean;
  readonly stepOnce: boolean;
  readonly loopOnce: boolean;
}
export function walkPlan(a: Artifact): WalkPlan {
  return {
    scans: (a.scans?.length ?? 0) > 0,
    stepOnce: a.kernels.step.rows === "TB",
    loopOnce: a.kernels.loop.rows === "TB",
  };
}

/**
 * The time loop, written once for every backend: the executor only runs kernels and scans. Forward: the
 * hoisted kernel over all steps, the scans, then the step kernel at t = 0..T-1 (rows past their length
 * carried by its mask), or once over all steps when every state is a scan state. Backward: the loop
 * kernel at t = T-1..0 between its masks (or once), the reverse scans, then the deferred kernel.
 */
export function walkForward(x: KernelExecutor, p: WalkPlan, T: number, masked: boolean): void {
  if (T === 0) return;
  x.run("before", 0);
  if (p.scans) x.scan("forward");
  if (!masked && !p.stepOnce && x.runSteps?.("step", 0, T)) return;
  for (let t = 0; t < (p.stepOnce ? 1 : T); t++) {
    x.run("step", t);
    if (masked) x.mask("step", "postmask", t);
  }
}

export function walkBackward(x: KernelExecutor, p: WalkPlan, T: number, masked: boolean): void {
  if (T === 0) return;
  if (masked || p.loopOnce || !x.runSteps?.("loop", T - 1, -1))
    for (let t = p.loopOnce ? 0 : T - 1; t >= 0; t--) {
      if (masked) x.mask("loop", "premask", t);
      x.run("loop", t);
      if (masked) x.mask("loop", "postmask", t);
    }
  if (p.scans) x.scan("backward");
  x.run("after", 0);
}
