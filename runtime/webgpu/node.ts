import { CellcError } from "../tensor.js";
import { createWebGpuBackend, type WebGpuBackend, type WebGpuOptions } from "./index.js";

/**
 * WebGPU in Node through Dawn (the `webgpu` npm package, an optional dependency). Node only: the browser
 * path is ./index.ts with navigator.gpu.
 */
export async function createNodeWebGpuBackend(
  opts: WebGpuOptions = {},
  /** Dawn's instance flags (`disable-dawn-features=...`), for the first backend of the process. */
  flags: readonly string[] = [],
): Promise<WebGpuBackend> {
  let mod: { create: (opts: string[]) => GPU; globals: Record<string, unknown> };
  try {
    mod = (await import("webgpu")) as unknown as typeof mod;
  } catch {
    throw new CellcError("the WebGPU backend needs the 'webgpu' package: npm install webgpu");
  }
  Object.assign(globalThis, mod.globals);
  // One instance for every backend (each its own device), kept reachable: Dawn crashes later if an
  // instance is collected while its devices live.
  const keep = globalThis as { __cellcGpu?: GPU };
  const gpu = (keep.__cellcGpu ??= mod.create([...flags]));
  return createWebGpuBackend(gpu, opts);
}
