import type { WebGpuBackend } from "../../runtime/webgpu/index.js";
import { createNodeWebGpuBackend } from "../../runtime/webgpu/node.js";

/**
 * The WebGPU backend in Node (Dawn on Mesa's lavapipe in CI). In CI (the variable CI set, as every CI
 * service sets it) a missing adapter fails instead of skipping; elsewhere the WebGPU tests skip without an adapter.
 */
let backend: Promise<WebGpuBackend | undefined> | undefined;
export function webgpu(): Promise<WebGpuBackend | undefined> {
  backend ??= createNodeWebGpuBackend().catch((e: unknown) => {
    if (process.env.CI) throw e;
    console.warn(`WebGPU tests skipped: ${(e as Error).message}`);
    return undefined;
  });
  return backend;
}
export const hasWebGpu = await webgpu().then(
  (b) => b !== undefined,
  () => false,
);
