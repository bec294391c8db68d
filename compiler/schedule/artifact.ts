import type { Artifact, KernelInfo, WgslKernelText } from "../../artifact/artifact.js";
import type { WasmTarget } from "../../artifact/wasm.js";
import { KERNEL_NAMES, kernelsOf, type KernelName, type Schedule } from "./types.js";
export type {
  Artifact,
  KernelInfo,
  WgslDispatch,
  WgslEntryInfo,
  WgslExtent,
  WgslKernelText,
} from "../../artifact/artifact.js";

/** The artifact of a schedule: its serialisable part and the kernels generated for each target. */
export function artifactOf(
  s: Schedule,
  targets: { js?: string; wgsl?: Record<KernelName, WgslKernelText>; wasm?: WasmTarget },
): Artifact {
  const ks = kernelsOf(s);
  const kernels = Object.fromEntries(
    KERNEL_NAMES.map((n) => [
      n,
      {
        rows: ks[n].rows,
        bindings: ks[n].bindings.map((b) => ({ buffer: b.buffer, shift: b.shift })),
        masks: ks[n].premask.length + ks[n].postmask.length > 0,
      },
    ]),
  ) as unknown as Record<KernelName, KernelInfo>;
  return {
    format: "cellc-artifact",
    version: 1,
    signature: s.signature,
    buffers: s.buffers,
    packs: s.packs,
    kernels,
    ...(s.scans.length ? { scans: s.scans } : {}),
    ...(targets.js !== undefined ? { js: targets.js } : {}),
    ...(targets.wgsl !== undefined ? { wgsl: targets.wgsl } : {}),
    ...(targets.wasm !== undefined ? { wasm: targets.wasm } : {}),
  };
}
