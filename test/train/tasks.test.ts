// The built-in tasks against their definitions, and data from safetensors files.
import { solvedBy } from "../../workbench/train/trainer.js";
import { describe, expect, test } from "vitest";
import { Rng } from "../../runtime/init.js";
import type { Tensor } from "../../runtime/tensor.js";
import { dataFromSafetensors, makeTask, TASK_NAMES } from "../../workbench/tasks/index.js";
import { TEXT } from "../../workbench/tasks/data/text.js";

describe("built-in tasks", () => {
  test("every task states its shapes and gives them", () => {
    expect([...TASK_NAMES]).toEqual(["adding", "copy", "selective-copy", "sine", "chars"]);
    for (const name of TASK_NAMES) {
      const t = makeTask(name, { T: 12 });
      const b = t.batch("train", 3, new Rng(1));
      const x = b.inputs.get("x")!;
      expect(x.shape).toEqual([t.T, 3, t.inputSize]);
      const classes = t.loss === "cross_entropy";
      const lead = t.on === "last" ? [3] : [t.T, 3];
      expect(b.target.shape).toEqual(classes ? lead : [...lead, t.outputSize]);
      expect(b.target.dtype).toBe(classes ? "i32" : "f32");
      expect(t.summary).toMatch(/x \[[^\]]+\].* -> target \[/);
    }
  });

  test("adding: two markers, one in each half; the target is their sum; chance MSE is 1/6", () => {
    const T = 20;
    const B = 4000;
    const b = makeTask("adding", { T }).batch("train", B, new Rng(2));
    const x = b.inputs.get("x")!.data;
    let mean = 0;
    for (let r = 0; r < B; r++) {
      const marked = [];
      for (let t = 0; t < T; t++) if (x[(t * B + r) * 2 + 1] === 1) marked.push(t);
      expect(marked).toHaveLength(2);
      expect(marked[0]!).toBeLessThan(T / 2);
      expect(marked[1]!).toBeGreaterThanOrEqual(T / 2);
      const sum = x[(marked[0]! * B + r) * 2]! + x[(marked[1]! * B + r) * 2]!;
      expect(b.target.data[r]).toBeCloseTo(sum, 6);
      mean += sum / B;
    }
    let mse = 0;
    for (let r = 0; r < B; r++) mse += (b.target.data[r]! - mean) ** 2 / B;
    expect(Math.abs(mse - 1 / 6)).toBeLessThan(0.01); // Var(U + U') = 2/12
    expect(makeTask("adding").solvedBelow).toBe(0.01);
  });

  test("selective-copy: 8 symbols at distinct random steps among blanks, recalled in order after the delimiter", () => {
    const T = 30;
    const t = makeTask("selective-copy", { T });
    const B = 50;
    const b = t.batch("train", B, new Rng(5));
    expect(t.T).toBe(T + 8);
    const x = b.inputs.get("x")!.data;
    const id = (s: number, r: number) => [...x.subarray((s * B + r) * 10, (s * B + r + 1) * 10)].indexOf(1);
    const steps = new Set<number>();
    for (let r = 0; r < B; r++) {
      const seen: number[] = [];
      for (let s = 0; s < T - 1; s++) {
        const c = id(s, r);
        expect(c >= 0 && c <= 8).toBe(true);
        if (c > 0) {
          seen.push(c);
          steps.add(s);
        }
      }
      expect(seen).toHaveLength(8);
      expect(id(T - 1, r)).toBe(9);
      for (let s = T; s < T + 8; s++) expect(id(s, r)).toBe(0);
      for (let s = 0; s < T + 8; s++) expect(b.target.data[s * B + r]).toBe(s >= T ? seen[s - T] : 0);
    }
    // The symbols' steps are spread over the whole noisy part, not clustered.
    expect(Math.min(...steps)).toBeLessThan(3);
    expect(Math.max(...steps)).toBeGreaterThan(T - 5);
    // Scored on the recall steps only: scores that put the target first there and anything elsewhere.
    const y = { dtype: "f32" as const, shape: [T + 8, B, 10], data: new Float32Array((T + 8) * B * 10) };
    for (let s = 0; s < T + 8; s++)
      for (let r = 0; r < B; r++) {
        const want = s >= T && !(s === T && r === 0) ? b.target.data[s * B + r]! : 7;
        y.data[(s * B + r) * 10 + want] = 1;
      }
    const accuracy = t.score!(y, b).recall_accuracy!;
    expect(accuracy).toBeCloseTo(1 - 1 / (8 * B), 10);
    expect(solvedBy(t, 0, { recall_accuracy: accuracy })).toBe(true);
    expect(solvedBy(t, 0, { recall_accuracy: 0.98 })).toBe(false);
    expect(solvedBy(t, 0)).toBe(false);
  });

  test("copy: the symbols come back after the delimiter; chance is the memoryless baseline", () => {
    const delay = 7;
    const t = makeTask("copy", { T: delay });
    const B = 5;
    const b = t.batch("train", B, new Rng(3));
    const L = t.T;
    expect(L).toBe(delay + 10);
    const x = b.inputs.get("x")!.data;
    const id = (s: number, r: number) => [...x.subarray((s * B + r) * 10, (s * B + r + 1) * 10)].indexOf(1);
    for (let r = 0; r < B; r++) {
      const sym = [0, 1, 2, 3, 4].map((s) => id(s, r));
      sym.forEach((c) => expect(c >= 1 && c <= 8).toBe(true));
      expect(id(5 + delay - 1, r)).toBe(9);
      for (let s = 0; s < L; s++) expect(b.target.data[s * B + r]).toBe(s >= L - 5 ? sym[s - (L - 5)] : 0);
    }
    // Blanks known, each of the 5 symbols uniform over 8: 5 ln 8 nats over L steps.
    expect(t.chance).toBeCloseTo((5 * Math.log(8)) / L, 12);
  });

  test("sine: the target is the next input", () => {
    const t = makeTask("sine", { T: 10 });
    const b = t.batch("train", 3, new Rng(4));
    const x = b.inputs.get("x")!.data;
    for (let s = 0; s < 9; s++)
      for (let r = 0; r < 3; r++) expect(b.target.data[s * 3 + r]).toBeCloseTo(x[(s + 1) * 3 + r]!, 6);
  });

  test("chars: one-hot text, the target is the next character; eval from the held-out end", () => {
    const t = makeTask("chars", { T: 16 });
    expect(TEXT.length).toBeGreaterThan(20000);
    expect(t.vocab).toBe([...new Set(TEXT)].sort().join(""));
    const V = t.vocab!.length;
    for (const split of ["train", "eval"] as const) {
      const b = t.batch(split, 4, new Rng(5));
      const x = b.inputs.get("x")!.data;
      for (let r = 0; r < 4; r++) {
        const ids = Array.from({ length: 16 }, (_, s) =>
          [...x.subarray((s * 4 + r) * V, (s * 4 + r + 1) * V)].indexOf(1),
        );
        const text = ids.map((i) => t.vocab![i]).join("");
        const at = TEXT.indexOf(text);
        expect(at).toBeGreaterThanOrEqual(0);
        if (split === "eval")
          expect(TEXT.lastIndexOf(text)).toBeGreaterThanOrEqual(Math.floor(TEXT.length * 0.9));
        for (let s = 0; s < 15; s++) expect(b.target.data[s * 4 + r]).toBe(ids[s + 1]);
      }
    }
  });

  test("bad names and lengths", () => {
    expect(() => makeTask("addition")).toThrow(
      "unknown task 'addition': the tasks are adding, copy, selective-copy, sine, chars",
    );
    expect(() => makeTask("adding", { T: 1 })).toThrow("T must be an integer from 2 to 100000, got 1");
    expect(() => makeTask("sine", { T: 2.5 })).toThrow(/got 2.5/);
    expect(() => makeTask("chars", { T: 5000 })).toThrow(/longer than the chars task's eval text/);
  });
});

const f32 = (shape: number[], f: (i: number) => number): Tensor => ({
  dtype: "f32",
  shape,
  data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => f(i)),
});

describe("data from safetensors", () => {
  const N = 10;
  const file = new Map<string, Tensor>([
    ["x", f32([3, N, 2], (i) => i)],
    // Row r's target is r, so a batch's rows can be read off its targets.
    ["target", f32([N, 1], (i) => i)],
  ]);

  test("in file order, a held-out tenth, the eval split whole", () => {
    const d = dataFromSafetensors(file, undefined, { inputs: ["x"], shuffle: false });
    expect([d.on, d.loss, d.T, d.inputSize, d.outputSize]).toEqual(["last", "mse", 3, 2, 1]);
    const rng = new Rng(1);
    const rows = [0, 1, 2].flatMap(() => [...d.batch("train", 4, rng).target.data]);
    expect(rows).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 2]);
    const ev = d.batch("eval", 256, rng);
    expect([...ev.target.data]).toEqual([9]);
    expect([...ev.inputs.get("x")!.data]).toEqual([18, 19, 38, 39, 58, 59]);
  });

  test("shuffled: every row once per epoch, in an order from the generator", () => {
    const d = dataFromSafetensors(file, file, { inputs: ["x"] });
    const rng = new Rng(2);
    const epoch = [...d.batch("train", N, rng).target.data];
    expect([...epoch].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(epoch).not.toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const again = dataFromSafetensors(file, file, { inputs: ["x"] });
    expect([...again.batch("train", N, new Rng(2)).target.data]).toEqual(epoch);
  });

  test("chance: the eval loss of the best constant guess, over the steps that count", () => {
    // Classes at every step, rows 0 and 1 of lengths 3 and 1: counted ids 0, 1, 1 (row 0) and 2 (row 1);
    // the 5s lie past row 1's length. The eval set is the file's rows.
    const T = 3;
    const ids: Tensor = { dtype: "i32", shape: [T, 2], data: Int32Array.of(0, 2, 1, 5, 1, 5) };
    const x: Tensor = { dtype: "f32", shape: [T, 2, 1], data: new Float32Array(6) };
    const lens: Tensor = { dtype: "i32", shape: [2], data: Int32Array.of(3, 1) };
    const file = new Map(Object.entries({ x, target: ids, seq_lens: lens }));
    const cls = dataFromSafetensors(file, file, { inputs: ["x"] });
    const p = [1 / 4, 2 / 4, 1 / 4]; // classes 0, 1, 2 among the 4 counted targets
    expect(cls.chance).toBeCloseTo(-p.reduce((a, q) => a + q * Math.log(q), 0), 12);
    // Reals on the last step, two outputs: the mean of the outputs' variances (1 and 100).
    const y: Tensor = { dtype: "f32", shape: [2, 2], data: Float32Array.of(1, 10, 3, 30) };
    const two = new Map(Object.entries({ x, target: y }));
    const reals = dataFromSafetensors(two, two, { inputs: ["x"] });
    expect(reals.chance).toBeCloseTo((1 + 100) / 2, 12);
    expect(reals.solvedBelow).toBeUndefined(); // no criterion unless one is given
  });

  test("errors name the tensor and the shape", () => {
    const bad = (ts: [string, Tensor][], evalTs?: [string, Tensor][]) => () =>
      dataFromSafetensors(new Map(ts), evalTs && new Map(evalTs), { inputs: ["x"] });
    const x = file.get("x")!;
    const y = file.get("target")!;
    expect(bad([["target", y]])).toThrow(
      "the training data has no tensor 'x' (an input of the model, [T, N, D])",
    );
    expect(bad([["x", x]])).toThrow("the training data has no tensor 'target'");
    expect(
      bad([
        ["x", x],
        ["target", f32([N + 1, 1], () => 0)],
      ]),
    ).toThrow(
      "tensor 'target' in the training data has shape [11, 1]; expected [N, O] with N = 10 or [T, N, O] with T = 3",
    );
    expect(
      bad([
        ["x", f32([3, N], () => 0)],
        ["target", y],
      ]),
    ).toThrow(/tensor 'x' in the training data has shape \[3, 10\]/);
    expect(
      bad([
        ["x", x],
        ["target", y],
        ["h0", y],
      ]),
    ).toThrow(/unexpected tensor 'h0' in the training data/);
    const lens: Tensor = { dtype: "i32", shape: [N], data: new Int32Array(N).fill(4) };
    expect(
      bad([
        ["x", x],
        ["target", y],
        ["seq_lens", lens],
      ]),
    ).toThrow("seq_lens[0] = 4 in the training data is outside 0 to T = 3");
    expect(
      bad(
        [
          ["x", x],
          ["target", y],
        ],
        [
          ["x", f32([3, 2, 5], () => 0)],
          ["target", f32([2, 1], () => 0)],
        ],
      ),
    ).toThrow(/tensor 'x' has shape \[3, 2, 5\] in the eval data but \[3, 10, 2\]/);
  });
});
