import { createLogger, defineConfig } from "vite";

// Node's worker_threads behind the WebAssembly backend's threaded GEMMs (runtime/wasm/node.ts) are
// imported lazily and never reached in a page: Vite's warning that it stubbed them out is noise here.
// A build (inside `npm run build`) says only what is wrong; the servers say where they listen.
function logger(level: "warn" | "info") {
  const l = createLogger(level);
  const warn = l.warn.bind(l);
  l.warn = (msg, opts) => {
    if (!/Module "node:\w+" has been externalized for browser compatibility/.test(msg)) warn(msg, opts);
  };
  return l;
}

// Cross-origin isolation, so that the WebAssembly backend may share its memory (SharedArrayBuffer).
const isolated = {
  "Cross-Origin-Opener-Policy": "same-origin",
  "Cross-Origin-Embedder-Policy": "require-corp",
};

// The playground: cellc's compiler and runtime bundled for the browser (`vite build playground`). A
// relative base, so that dist/playground/ works from any static host and any folder of it.
export default defineConfig(({ command }) => ({
  base: "./",
  build: {
    outDir: "../dist/playground",
    emptyOutDir: true,
    target: "es2022",
    reportCompressedSize: false,
    // The compiler (parser included) and the editor: about 200 kB gzipped, in one chunk on purpose.
    chunkSizeWarningLimit: 1000,
  },
  // The training worker loads the WebGPU backend lazily (a chunk of its own), which a classic worker cannot.
  worker: { format: "es" },
  // The built-in cells are read from ../examples/cells.
  server: { fs: { allow: [".."] }, headers: isolated },
  preview: { headers: isolated },
  logLevel: command === "build" ? "warn" : "info",
  customLogger: logger(command === "build" ? "warn" : "info"),
}));
