// The backends by name: each is one registered executor of the compiled artifact (JS kernels, WebAssembly
// SIMD, WebGPU) whose kernels the compiler's emitter of the same name made (compiler/compile.ts TARGETS).
// Adding a backend is an emitter there, an executor here.
import { jsBackend, type Backend } from "./backend.js";
import { CellcError } from "./tensor.js";

export interface BackendOptions {
  /** Threads for the wasm backend (1: the calling thread alone). */
  readonly threads?: number;
  /** The WebGPU entry point (navigator.gpu in a page); in Node, Dawn from the `webgpu` package. */
  readonly gpu?: GPU;
}

export interface BackendEntry {
  /** The precisions it computes in. */
  readonly dtypes: readonly ("f32" | "f64")[];
  create(opts: BackendOptions): Promise<Backend>;
}

export const BACKENDS = {
  js: { dtypes: ["f32", "f64"], create: async () => jsBackend },
  wasm: {
    dtypes: ["f32"],
    create: async (o) => {
      const wasm = await import("./cpu/wasm.js");
      return wasm.createThreadedWasmBackend(o.threads ?? 1);
    },
  },
  webgpu: {
    dtypes: ["f32"],
    create: async (o) => {
      if (o.gpu) return (await import("./webgpu/index.js")).createWebGpuBackend(o.gpu);
      return (await import("./webgpu/node.js")).createNodeWebGpuBackend();
    },
  },
} as const satisfies Record<string, BackendEntry>;

export type BackendName = keyof typeof BACKENDS;
export const BACKEND_NAMES = Object.keys(BACKENDS) as BackendName[];

/** A backend by name, refused with the names there are. */
export function createBackend(name: string, opts: BackendOptions = {}): Promise<Backend> {
  if (!Object.hasOwn(BACKENDS, name))
    throw new CellcError(`unknown backend '${name}': the backends are ${BACKEND_NAMES.join(", ")}`);
  return BACKENDS[name as BackendName].create(opts);
}
