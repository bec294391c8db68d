// Fuzzing edited artifacts: the generated JS of built-in cells, losses and optimisers, mutated (snippets
// that reach for globals inserted, tokens deleted, swapped or renamed), must either be refused with a
// CellcError or load without having run anything: a sentinel global is never set. Run folders' network.json
// with fields replaced by other JSON values must be refused naming the field, or load.
import fc from "fast-check";
import { readFileSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { compileCell } from "../../api/index.js";
import { lossKernels } from "../../compiler/network/loss.js";
import { optimKernels } from "../../compiler/network/optim.js";
import { loadJsModule } from "../../runtime/kernels.js";
import { CellcError } from "../../runtime/tensor.js";
import { checkNetworkArtifact, Network } from "../../workbench/train/network.js";
import { makeTask } from "../../workbench/tasks/index.js";
import { Rng } from "../../runtime/init.js";
import { networkArtifact } from "../helpers.js";

const SENTINEL = "__cellcFuzzEdited";
/** CELLC_FUZZ_SEED and CELLC_FUZZ_SCALE (a multiple of the runs) explore further than the suite's fixed runs. */
const SEED = Number(process.env.CELLC_FUZZ_SEED ?? 0);
const SCALE = Number(process.env.CELLC_FUZZ_SCALE ?? 1);
const g = globalThis as Record<string, unknown>;
afterEach(() => {
  delete g[SENTINEL];
});

const TEXTS: { js: string; names: string[] }[] = [
  ...["rnn", "lstm", "gru"].map((n) => ({
    js: compileCell(readFileSync(`examples/cells/${n}.cell`, "utf8")).artifact.js!,
    names: ["before", "step", "loop", "after", "GEMMS"],
  })),
  { js: lossKernels("cross_entropy").js, names: ["loss"] },
  { js: optimKernels("adam").js, names: ["update", "sumsq", "scale"] },
];

/** Snippets an attacker would try; each would set the sentinel if it ran. */
const SNIPPETS = [
  `globalThis.${SENTINEL} = 1;`,
  `globalThis["${SENTINEL}"] = 1;`,
  `this.${SENTINEL} = 1;`,
  `Function("globalThis.${SENTINEL} = 1")();`,
  `gemmNT.constructor("globalThis.${SENTINEL} = 1")();`,
  `[].flat.constructor("globalThis.${SENTINEL} = 1")();`,
  `(() => { globalThis.${SENTINEL} = 1; })();`,
  `process.exit(3);`,
  `import("node:fs");`,
  `eval("globalThis.${SENTINEL} = 1");`,
  "`${globalThis." + SENTINEL + " = 1}`;",
  `/x/.constructor.constructor("globalThis.${SENTINEL} = 1")();`,
  `const v1 = / //; globalThis.${SENTINEL} = 1;`,
  `<!-- globalThis.${SENTINEL} = 1;`,
  `\u2028globalThis.${SENTINEL} = 1;`,
  `Math.exp = function () { globalThis.${SENTINEL} = 1; };`,
  `Float32Array = 0;`,
  `function v9() { return (0, gemmNT)(1); }`,
  `let x = mem.constructor;`,
  `\\u0067lobalThis.${SENTINEL} = 1;`,
];
/** Harmless inside a kernel (a loop, a call), but they would run on loading: refused at the top level. */
const TOP_LEVEL = [
  `for (;;) {}`,
  `const v1 = gemmNT(1);`,
  `while (1) {}`,
  `let v1 = new Float32Array(1e10);`,
];
const NAMES = ["globalThis", "process", "constructor", "Function", "eval", "this", "arguments", "require", "import", "__proto__", "prototype", "window", "self"]; // prettier-ignore

type Edit = { kind: "insert"; at: number; snippet: string } | { kind: "delete"; at: number; n: number } | { kind: "rename"; at: number; name: string } | { kind: "flip"; at: number; c: string }; // prettier-ignore

const edit: fc.Arbitrary<Edit> = fc.oneof(
  fc.record({ kind: fc.constant("insert" as const), at: fc.nat(), snippet: fc.constantFrom(...SNIPPETS) }),
  fc.record({ kind: fc.constant("delete" as const), at: fc.nat(), n: fc.integer({ min: 1, max: 40 }) }),
  fc.record({ kind: fc.constant("rename" as const), at: fc.nat(), name: fc.constantFrom(...NAMES) }),
  fc.record({ kind: fc.constant("flip" as const), at: fc.nat(), c: fc.string({ minLength: 1, maxLength: 1, unit: "binary" }) }), // prettier-ignore
);

function apply(text: string, e: Edit): string {
  const at = e.at % (text.length + 1);
  switch (e.kind) {
    case "insert":
      return text.slice(0, at) + e.snippet + text.slice(at);
    case "delete":
      return text.slice(0, at) + text.slice(at + e.n);
    case "flip":
      return text.slice(0, at) + e.c + text.slice(at + 1);
    case "rename": {
      const names = [...text.matchAll(/[A-Za-z_]\w*/g)];
      const m = names[e.at % names.length]!;
      return text.slice(0, m.index) + e.name + text.slice(m.index! + m[0].length);
    }
  }
}

/** Loads an edited text; anything but a CellcError or a clean load (sentinel unset) is a finding. */
function tryLoad(text: string, names: string[]): "refused" | "loaded" {
  try {
    loadJsModule(text, names, "fuzzed");
    return "loaded";
  } catch (e) {
    if (!(e instanceof CellcError)) throw e;
    return "refused";
  } finally {
    expect(g[SENTINEL]).toBeUndefined();
  }
}

describe("fuzzing edited JS kernels", () => {
  it("the corpus: every snippet, at the top level and inside a kernel, is refused", () => {
    for (const { js, names } of TEXTS)
      for (const s of SNIPPETS) {
        const at = js.indexOf("function ", js.indexOf("function ") + 1);
        const inside = js.indexOf("{", at) + 1;
        expect(tryLoad(js.slice(0, at) + s + "\n" + js.slice(at), names), s).toBe("refused");
        expect(tryLoad(js.slice(0, inside) + s + js.slice(inside), names), s).toBe("refused");
      }
    for (const { js, names } of TEXTS)
      for (const s of TOP_LEVEL) expect(tryLoad(`${s}\n${js}`, names), s).toBe("refused");
  });

  it("1,500 random edits: refused with a CellcError or loaded without running anything", () => {
    let refused = 0;
    fc.assert(
      fc.property(fc.nat(TEXTS.length - 1), fc.array(edit, { minLength: 1, maxLength: 4 }), (k, edits) => {
        const t = TEXTS[k]!;
        const text = edits.reduce(apply, t.js);
        if (tryLoad(text, t.names) === "refused") refused++;
      }),
      { seed: 20261201 + SEED, numRuns: 1500 * SCALE, endOnFailure: true },
    );
    // Most edits break the text; the few that do not are harmless (a deleted space, say).
    expect(refused).toBeGreaterThan(500);
  });
});

describe("fuzzing a run folder's network.json", () => {
  const data = makeTask("adding", { T: 4 });
  const base = networkArtifact("examples/cells/rnn.cell", data, { dims: { H: 2 } });
  const text = JSON.stringify(base);
  /** Every path of a JSON value, to pick one to replace. */
  const paths: (string | number)[][] = [];
  (function walk(v: unknown, p: (string | number)[]) {
    if (p.length && !(typeof v === "string" && v.length > 200)) paths.push(p);
    if (Array.isArray(v)) v.forEach((x, i) => walk(x, [...p, i]));
    else if (v && typeof v === "object") for (const [k, x] of Object.entries(v)) walk(x, [...p, k]);
  })(base, []);
  const VALUES: unknown[] = [null, {}, [], "x", "", -1, 0, 0.5, 1e400, 2 ** 53, 1e9, true, [1, 2], { a: 1 }, "__proto__"]; // prettier-ignore

  it("600 fields replaced: refused naming a field, or a network that computes a loss", async () => {
    const batch = data.batch("train", 2, new Rng(1));
    await fc.assert(
      fc.asyncProperty(fc.nat(paths.length - 1), fc.constantFrom(...VALUES), async (k, value) => {
        const a = JSON.parse(text) as Record<string, unknown>;
        const path = paths[k]!;
        let o = a as Record<string | number, unknown>;
        for (const p of path.slice(0, -1)) o = o[p] as Record<string | number, unknown>;
        o[path.at(-1)!] = value;
        const copy = JSON.parse(JSON.stringify(a)) as never;
        try {
          checkNetworkArtifact(copy, "the network 'n.json'");
        } catch (e) {
          if (!(e instanceof CellcError)) throw e;
          expect(e.message).toMatch(/^the network 'n\.json'/);
          return;
        }
        // Accepted: then it is a network that works (a name, a label or an unused field was changed).
        try {
          const net = new Network(copy, {});
          expect(Number.isFinite((await net.loss(batch)).loss)).toBe(true);
        } catch (e) {
          if (!(e instanceof CellcError))
            throw new Error(`${path.join(".")} = ${JSON.stringify(value)}: ${e}`);
        }
      }),
      { seed: 20261202 + SEED, numRuns: 600 * SCALE, endOnFailure: true },
    );
  });
});
