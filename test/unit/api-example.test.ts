// The library API's worked example (docs/api.md, examples/api/train-on-arrays.mjs) runs as a user runs
// it, from the built package: it trains on arrays, its loss falls, and its predictions are the sine's.
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";

describe("examples/api/train-on-arrays.mjs", () => {
  it("exits 0; the eval loss falls; predict and stepping agree, near the true values", () => {
    const r = spawnSync(process.execPath, ["examples/api/train-on-arrays.mjs"], { encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    const loss = /eval loss (\S+) before training, (\S+) after 300 steps/.exec(r.stdout);
    expect(loss, r.stdout).not.toBeNull();
    const [before, after] = [Number(loss![1]), Number(loss![2])];
    expect(after).toBeLessThan(before / 10);
    const pairs = [...r.stdout.matchAll(/(-?\d\.\d+) \(true (-?\d\.\d+)\)/g)].map((m) => [
      Number(m[1]),
      Number(m[2]),
    ]);
    expect(pairs).toHaveLength(3);
    for (const [got, want] of pairs) expect(Math.abs(got! - want!)).toBeLessThan(0.1);
    const stepped = /stepper after 30 steps: (.*)/.exec(r.stdout)![1]!.split(", ").map(Number);
    expect(stepped).toEqual(pairs.map(([got]) => got));
    const loaded = /and loaded: predict (.*)/.exec(r.stdout)![1]!.split(", ").map(Number);
    expect(loaded).toEqual(pairs.map(([got]) => got));
  }, 60_000);

  it("is the example docs/api.md shows", () => {
    const code = readFileSync("examples/api/train-on-arrays.mjs", "utf8").replace(/^(\/\/.*\n)+/, "");
    const doc = readFileSync("docs/api.md", "utf8").replaceAll('"cellc"', '"../../dist/api/index.js"');
    expect(doc).toContain(code.trim());
  }, 60_000);
});
