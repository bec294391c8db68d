import { CellcError } from "../tensor.js";
import { createWebGpuBackend, type WebGpuBackend } from "./index.js";

/**
 * WebGPU in Node through Dawn (the `webgpu` npm package, an optional dependency). Node only: the browser
 * path is ./index.ts with navigator.gpu.
 */
export async function createNodeWebGpuBackend(): Promise<WebGpuBackend> {
  let mod: { create: (opts: string[]) => GPU; globals: Record<string, unknown> };
  try {
    mod = (await import("webgpu")) as unknown as typeof mod;
  } catch {
    throw new CellcError("the WebGPU backend needs the 'webgpu' package: npm install webgpu");
  }
  Object.assign(globalThis, mod.globals);
  const gpu = mod.create([]);
  // Keep the instance reachable: Dawn crashes later if it is collected.
  (globalThis as { __cellcGpu?: GPU }).__cellcGpu = gpu;
  return createWebGpuBackend(gpu);
}
