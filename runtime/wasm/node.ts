// The Node platform of the pool: worker_threads started from source text.
import os from "node:os";
import { Worker } from "node:worker_threads";
import { createPool, workerSource, type Platform, type Pool, type PoolOptions } from "./pool.js";

const SOURCE = workerSource(
  `require("node:worker_threads").parentPort.on("message", (d) => __message(d));\n`,
);

export const nodePlatform: Platform = {
  spawn(data) {
    const w = new Worker(SOURCE, { eval: true });
    // The workers wait on shared memory between calls: they must not keep a finished process alive.
    w.unref();
    w.postMessage(data);
    return {
      post: (d) => w.postMessage(d),
      onError: (cb) => void w.on("error", cb),
      terminate: () => w.terminate(),
    };
  },
};

/** A pool on worker_threads; threads defaults to the number of cores. */
export function createNodePool(
  opts: Omit<PoolOptions, "threads" | "platform"> & { threads?: number },
): Promise<Pool> {
  return createPool({ ...opts, threads: opts.threads ?? os.availableParallelism(), platform: nodePlatform });
}
