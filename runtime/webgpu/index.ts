import { CellcError } from "../tensor.js";
import type { Backend } from "../backend.js";
import { GpuSequenceRunner } from "./runner.js";
import { GpuContext } from "./context.js";

export { GpuSequenceRunner, WgslCompileError } from "./runner.js";
export type { GpuContext } from "./context.js";

export interface WebGpuBackend extends Backend {
  readonly device: GPUDevice;
  /** @internal The device's shared encoder, buffers and sequence operations. */
  readonly context: GpuContext;
  /** The adapter's vendor, architecture and description, for reports. */
  readonly adapterName: string;
}

/**
 * A WebGPU backend on the given `GPU` (navigator.gpu in a browser; in Node, see ./node.ts). The device is
 * asked for the adapter's largest storage buffers, since a whole sequence lives in one buffer.
 */
export async function createWebGpuBackend(
  gpu: GPU | undefined = globalThis.navigator?.gpu,
): Promise<WebGpuBackend> {
  if (!gpu) throw new CellcError("WebGPU is not available here (no navigator.gpu)");
  const adapter = await gpu.requestAdapter();
  if (!adapter) throw new CellcError("WebGPU found no adapter: no GPU, or no driver for one");
  const lim = adapter.limits;
  const device = await adapter.requestDevice({
    requiredLimits: {
      maxStorageBufferBindingSize: lim.maxStorageBufferBindingSize,
      maxBufferSize: lim.maxBufferSize,
    },
  });
  const ctx = new GpuContext(device);
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
    runner: (cell, sizes, B) => new GpuSequenceRunner(ctx, cell, sizes, B),
    ops: ctx.ops,
  };
}
