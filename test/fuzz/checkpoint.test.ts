// Fuzzing checkpoints: a run's state with a field replaced by another JSON value or deleted, and its tensors
// dropped, reshaped or retyped, is resumed by the library (Trainer.resume) and by `cellc train --resume`.
// Each must resume and train, or be refused with a CellcError that names the checkpoint; never an internal
// error, a runaway loop or a NaN. The reproducers of the hardening issue are the corpus.
import fc from "fast-check";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { main } from "../../cli/main.js";
import { writeSafetensors } from "../../runtime/safetensors.js";
import { CellcError, type Tensor } from "../../runtime/tensor.js";
import { makeTask } from "../../workbench/tasks/index.js";
import { decodeCheckpoint } from "../../workbench/train/checkpoint.js";
import { Network } from "../../workbench/train/network.js";
import { Trainer } from "../../workbench/train/trainer.js";
import { networkArtifact } from "../helpers.js";

const SEED = Number(process.env.CELLC_FUZZ_SEED ?? 0);
const SCALE = Number(process.env.CELLC_FUZZ_SCALE ?? 1);
const TIME_LIMIT_MS = 5000;
const tmp = mkdtempSync(join(tmpdir(), "cellc-fuzz-ck-"));
const RNN = "examples/cells/rnn.cell";

let run: string;
let state: Record<string, unknown>;
let tensors: Map<string, Tensor>;
beforeAll(async () => {
  process.env.CELLC_MEMORY_LIMIT = "64M";
  run = join(tmp, "run");
  const code = await main(["train", RNN, "--task", "adding", "--T", "4", "--dims", "H=2", "--batch", "3", "--steps", "2", "--eval-every", "1", "--quiet", "--backend", "js", "--out", run], { out: () => {}, err: () => {} }); // prettier-ignore
  expect(code).toBe(0);
  const ck = decodeCheckpoint(readFileSync(join(run, "checkpoint.safetensors")), "ck");
  state = ck.state as Record<string, unknown>;
  tensors = ck.tensors;
});
afterAll(() => {
  delete process.env.CELLC_MEMORY_LIMIT;
  rmSync(tmp, { recursive: true, force: true });
});

/** Every path of a JSON value. */
function pathsOf(v: unknown, p: (string | number)[] = [], out: (string | number)[][] = []) {
  if (p.length && !(typeof v === "string" && v.length > 200)) out.push(p);
  if (Array.isArray(v)) v.forEach((x, i) => pathsOf(x, [...p, i], out));
  else if (v && typeof v === "object") for (const [k, x] of Object.entries(v)) pathsOf(x, [...p, k], out);
  return out;
}
const DELETE = Symbol("delete");
const VALUES: unknown[] = [DELETE, null, {}, [], "x", "", -1, 0, 0.5, 1e400, -1e400, 2 ** 53, 1e9, true, [1, 2], { a: 1 }, "adding", "sgd"]; // prettier-ignore

function edited(path: (string | number)[], value: unknown, base = state): Record<string, unknown> {
  const s = JSON.parse(JSON.stringify(base)) as Record<string, unknown>;
  let o = s as Record<string | number, unknown>;
  for (const p of path.slice(0, -1)) o = o[p] as Record<string | number, unknown>;
  if (value === DELETE) delete o[path.at(-1)!];
  else o[path.at(-1)!] = value;
  return s;
}

type TensorEdit = { kind: "drop" | "reshape" | "retype" | "add"; k: number };
function editTensors(edits: TensorEdit[]): Map<string, Tensor> {
  const ts = new Map(tensors);
  for (const e of edits) {
    const names = [...ts.keys()];
    const n = names[e.k % names.length]!;
    const t = ts.get(n)!;
    if (e.kind === "drop") ts.delete(n);
    else if (e.kind === "reshape")
      ts.set(n, { dtype: "f32", shape: [t.data.length + 1], data: new Float32Array(t.data.length + 1) }); // prettier-ignore
    else if (e.kind === "retype")
      ts.set(n, { dtype: "i32", shape: t.shape, data: new Int32Array(t.data.length) });
    else ts.set(`m/${n}`, { dtype: "f32", shape: [3], data: new Float32Array(3) });
  }
  return ts;
}

/** Resumes in the library and trains one more step: "ok", or "refused" with a CellcError. */
async function tryResume(s: unknown, ts: Map<string, Tensor>): Promise<"ok" | "refused"> {
  const t0 = performance.now();
  const data = makeTask("adding", { T: 4 });
  const net = () => new Network(networkArtifact(RNN, data, { dims: { H: 2 } }), {});
  try {
    const step = (s as { step?: unknown })?.step;
    const t = await Trainer.resume({ tensors: ts, state: s }, { net: net(), data, steps: Number.isSafeInteger(step) ? (step as number) + 1 : 3 }); // prettier-ignore
    const r = await t.run();
    expect(Number.isFinite(r.finalEvalLoss)).toBe(true);
    expect(Number.isFinite(r.msPerStep)).toBe(true);
    return "ok";
  } catch (e) {
    if (!(e instanceof CellcError)) throw e;
    expect(e.message).toMatch(
      /^the checkpoint|^training stopped|needs .* over the memory limit|more than a typed array/,
    );
    return "refused";
  } finally {
    expect(performance.now() - t0).toBeLessThan(TIME_LIMIT_MS);
  }
}

/** `cellc train --resume` on a copy of the run with this state: exit 0, or 1 with a message. */
async function tryCli(s: unknown): Promise<number> {
  const dir = join(tmp, "resume");
  rmSync(dir, { recursive: true, force: true });
  cpSync(run, dir, { recursive: true });
  writeFileSync(join(dir, "checkpoint.safetensors"), writeSafetensors(tensors, new Map([["cellc.checkpoint", JSON.stringify(s)]]))); // prettier-ignore
  let err = "";
  const t0 = performance.now();
  const code = await main(["train", "--resume", dir, "--steps", "3", "--quiet", "--backend", "js"], { out: () => {}, err: (x) => void (err += x) }); // prettier-ignore
  expect(performance.now() - t0).toBeLessThan(TIME_LIMIT_MS);
  expect(err).not.toMatch(/internal error|\n\s+at /);
  if (code !== 0) expect(err).toMatch(/cellc: error: /);
  return code;
}

describe("fuzzing checkpoints", () => {
  it("the corpus: the reproducers of the hardening issue are refused", async () => {
    const cases: [string, unknown][] = [
      ["config: null", edited(["config"], null)],
      ["no optimiser", edited(["optimizer"], DELETE)],
      ["metrics: {}", edited(["metrics"], {})],
      ["origin.data: 'x'", edited(["origin", "data"], "x")],
      ["a batch of 2^53", edited(["config", "batch"], 2 ** 53)],
      ["layers: 1e400", JSON.parse(JSON.stringify(state).replace(/"layers":1/, '"layers":1e400')) as unknown],
      ["step: 'x'", edited(["step"], "x")],
    ];
    for (const [what, s] of cases) expect(await tryCli(s), what).toBe(1);
    for (const [what, s] of cases.filter(([w]) => !w.startsWith("origin") && !w.startsWith("layers")))
      expect(await tryResume(s, tensors), what).toBe("refused");
    expect(await tryCli(state)).toBe(0);
    expect(await tryResume(state, tensors)).toBe("ok");
  });

  it("300 states and tensors edited, resumed by the library", async () => {
    const tensorEdit = fc.record({ kind: fc.constantFrom("drop", "reshape", "retype", "add") as fc.Arbitrary<TensorEdit["kind"]>, k: fc.nat() }); // prettier-ignore
    let ok = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.nat(), fc.constantFrom(...VALUES)), { minLength: 0, maxLength: 3 }),
        fc.array(tensorEdit, { maxLength: 2 }),
        async (edits, tEdits) => {
          let s = state;
          for (const [k, v] of edits) {
            const ps = pathsOf(s);
            if (ps.length) s = edited(ps[k % ps.length]!, v, s);
          }
          if ((await tryResume(s, editTensors(tEdits))) === "ok") ok++;
        },
      ),
      { seed: 20261205 + SEED, numRuns: 300 * SCALE, endOnFailure: true },
    );
    expect(ok).toBeGreaterThan(10);
  });

  it("40 origins edited, resumed by cellc train --resume", async () => {
    const paths = pathsOf(state).filter((p) => p[0] === "origin");
    await fc.assert(
      fc.asyncProperty(
        fc.nat(paths.length - 1),
        fc.constantFrom(...VALUES, "/dev/zero", "nope.cell"),
        async (k, v) => {
          await tryCli(edited(paths[k]!, v));
        },
      ),
      { seed: 20261206 + SEED, numRuns: 40 * SCALE, endOnFailure: true },
    );
  });
});
