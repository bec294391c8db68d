// The browser platform of the pool: Web Workers started from a Blob of the worker source. Shared memory
// needs cross-origin isolation; without it, use one thread (no platform) and say so once.
import { workerSource, type Platform } from "./pool.js";

/** Whether this page may share a WebAssembly.Memory with workers. */
export function canShareMemory(): boolean {
  return typeof SharedArrayBuffer !== "undefined" && globalThis.crossOriginIsolated === true;
}

export const webPlatform: Platform = {
  spawn(data) {
    const source = workerSource(`self.onmessage = (e) => __message(e.data);\n`);
    const url = URL.createObjectURL(new Blob([source], { type: "text/javascript" }));
    const w = new Worker(url);
    w.postMessage(data);
    return {
      post: (d) => w.postMessage(d),
      onError: (cb) => w.addEventListener("error", (e) => cb(e.message)),
      terminate: () => {
        w.terminate();
        URL.revokeObjectURL(url);
      },
    };
  },
};
