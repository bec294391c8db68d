// The layers import one way (docs/internals.md, "Layers"): grammar <- compiler <- artifact (plain data) <- runtime
// <- workbench (training, tasks, reports) <- cli, playground, api. This walks every source file's imports
// and fails on an import across a layer the wrong way, on an import cycle between files, and on file
// system, argv or printing outside cli/.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, normalize, relative } from "node:path";
import { describe, expect, it } from "vitest";

const ROOTS = [
  "grammar",
  "artifact",
  "kernels",
  "compiler",
  "runtime",
  "workbench",
  "cli",
  "api",
  "playground",
];

/** What each top-level folder may import, besides itself and npm packages. */
const ALLOWED: Record<string, readonly string[]> = {
  grammar: [],
  artifact: [],
  kernels: [],
  compiler: ["grammar", "artifact", "kernels"],
  runtime: ["artifact", "kernels"],
  workbench: ["artifact", "kernels", "runtime"],
  cli: ["grammar", "artifact", "kernels", "compiler", "runtime", "workbench", "api"],
  api: ["grammar", "artifact", "kernels", "compiler", "runtime", "workbench"],
  playground: ["grammar", "artifact", "kernels", "compiler", "runtime", "workbench", "api"],
};

/** Node's own modules: only cli/ and the runtime's Node adapters (worker threads, Dawn) use them. */
const HOST_ONLY = /^(node:|fs$|os$|path$|child_process$|worker_threads$|crypto$|url$|readline$)/;
const NODE_ADAPTERS = new Set(["runtime/wasm/node.ts", "runtime/webgpu/node.ts"]);
const HOST_CALLS = /\bprocess\.(argv|exit|stdout|stderr)\b|\bconsole\.(log|error|warn|info)\(/;

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (name === "node_modules" || name === "dist") continue;
    if (statSync(p).isDirectory()) out.push(...sources(p));
    else if (/\.(ts|mts)$/.test(name) && !name.endsWith(".d.ts") && !name.endsWith(".config.ts")) out.push(p);
  }
  return out;
}

/** Every import of a file: relative ones resolved to source paths, others as written. */
function importsOf(file: string): { local: string[]; external: string[] } {
  const text = readFileSync(file, "utf8");
  const local: string[] = [];
  const external: string[] = [];
  const re =
    /(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+["']([^"']+)["']|\bimport\(\s*["']([^"']+)["']\s*\)/g;
  for (const m of text.matchAll(re)) {
    const spec = m[1] ?? m[2]!;
    if (!spec.startsWith(".")) {
      external.push(spec);
      continue;
    }
    const target = normalize(join(dirname(file), spec)).replace(/\.js$/, ".ts");
    local.push(target);
  }
  return { local, external };
}

const files = ROOTS.flatMap((r) => sources(r));
const graph = new Map(files.map((f) => [f, importsOf(f)]));
const layerOf = (f: string) => f.split("/")[0]!;

describe("layers import one way", () => {
  it("finds the source tree", () => {
    expect(files.length).toBeGreaterThan(100);
    for (const r of ROOTS)
      expect(
        files.some((f) => layerOf(f) === r),
        r,
      ).toBe(true);
  });

  it("no file imports a layer above its own", () => {
    const bad: string[] = [];
    for (const [f, { local }] of graph)
      for (const t of local) {
        const from = layerOf(f);
        const to = layerOf(t);
        if (from !== to && !ALLOWED[from]!.includes(to)) bad.push(`${f} -> ${t}`);
      }
    expect(bad).toEqual([]);
  });

  it("only cli/ touches files, reads argv, prints or exits", () => {
    const bad: string[] = [];
    for (const [f, { external }] of graph) {
      if (layerOf(f) === "cli") continue;
      if (!NODE_ADAPTERS.has(f))
        for (const e of external) if (HOST_ONLY.test(e)) bad.push(`${f} imports ${e}`);
      const text = readFileSync(f, "utf8").replace(/\/\/.*$|\/\*[\s\S]*?\*\//gm, "");
      if (HOST_CALLS.test(text) && !f.startsWith("playground/"))
        bad.push(`${f} uses ${HOST_CALLS.exec(text)![0]}`);
    }
    expect(bad).toEqual([]);
  });

  it("no import cycle between files", () => {
    const cycles: string[] = [];
    const state = new Map<string, "open" | "done">();
    const stack: string[] = [];
    const visit = (f: string) => {
      state.set(f, "open");
      stack.push(f);
      for (const t of graph.get(f)?.local ?? []) {
        if (!graph.has(t)) continue;
        if (state.get(t) === "open") cycles.push([...stack.slice(stack.indexOf(t)), t].join(" -> "));
        else if (!state.has(t)) visit(t);
      }
      stack.pop();
      state.set(f, "done");
    };
    for (const f of files) if (!state.has(f)) visit(f);
    expect(cycles).toEqual([]);
  });

  it("every local import resolves to a source file", () => {
    const missing: string[] = [];
    for (const [f, { local }] of graph)
      for (const t of local) if (!graph.has(t)) missing.push(`${f} -> ${relative(".", t)}`);
    expect(missing).toEqual([]);
  });
});
