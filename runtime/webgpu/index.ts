import { CellcError } from "../tensor.js";
import type { Backend } from "../backend.js";
import { GpuSequenceRunner } from "./runner.js";
import { GpuContext } from "./context.js";

export { GpuSequenceRunner, WgslCompileError } from "./runner.js";
export { GpuProfile, type DispatchTiming } from "./profile.js";
export type { GpuContext } from "./context.js";

export interface WebGpuBackend extends Backend {
  readonly device: GPUDevice;
  /** @internal The device's shared encoder, buffers and sequence operations. */
  readonly context: GpuContext;
  /** The adapter's vendor, architecture and description, for reports. */
  readonly adapterName: string;
}

export interface WebGpuOptions {
  /** Use subgroup operations where the device has the `subgroups` feature (default true). */
  readonly subgroups?: boolean;
  /** Ask for `shader-f16` where the adapter has it, so that models may use precision f16 (default true). */
  readonly f16?: boolean;
}

/**
 * A WebGPU backend on the given `GPU` (navigator.gpu in a browser; in Node, see ./node.ts). The device is
 * asked for the adapter's largest storage buffers, since a whole sequence lives in one buffer.
 */
export async function createWebGpuBackend(
  gpu: GPU | undefined = globalThis.navigator?.gpu,
  opts: WebGpuOptions = {},
): Promise<WebGpuBackend> {
  if (!gpu) throw new CellcError("WebGPU is not available here (no navigator.gpu)");
  const adapter = await gpu.requestAdapter();
  if (!adapter) throw new CellcError("WebGPU found no adapter: no GPU, or no driver for one");
  const lim = adapter.limits;
  // What the kernels can use where the adapter has it: subgroup reductions, f16 storage, kernel timings.
  const wanted: GPUFeatureName[] = ["subgroups", "timestamp-query"];
  if (opts.f16 ?? true) wanted.push("shader-f16");
  const device = await adapter.requestDevice({
    requiredFeatures: wanted.filter((f) => adapter.features.has(f)),
    requiredLimits: {
      maxStorageBufferBindingSize: lim.maxStorageBufferBindingSize,
      maxBufferSize: lim.maxBufferSize,
    },
  });
  const ctx = new GpuContext(device, opts);
  device.addEventListener("uncapturederror", (e) => {
    // Validation errors are bugs in cellc: the next read-back fails with the first one (an internal error).
    e.preventDefault();
    ctx.failure ??= (e as GPUUncapturedErrorEvent).error.message;
  });
  const info = adapter.info;
  const adapterName =
    [info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(" / ") ||
    "unknown adapter";
  return {
    name: "webgpu",
    async: true,
    device,
    context: ctx,
    adapterName,
    // The device computes in float32 whatever the model's dtype; read-back widens to it.
    runner: (cell, sizes, B, _dtype, precision) => new GpuSequenceRunner(ctx, cell, sizes, B, precision),
    f16: device.features.has("shader-f16"),
    ops: ctx.ops,
  };
}
