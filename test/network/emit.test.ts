// `cellc compile FILE --emit network`: the network compiled whole, printed with its parts and parameters.
import { describe, expect, test } from "vitest";
import { main } from "../../cli/main.js";

async function cellc(...argv: string[]) {
  let out = "";
  let err = "";
  const code = await main(argv, { out: (s) => void (out += s), err: (s) => void (err += s) });
  return { code, out, err };
}

describe("--emit network", () => {
  test("a declared model: its parts, sizes and every parameter", async () => {
    const r = await cellc("compile", "examples/models/adding.cell", "--emit", "network", "--task", "adding");
    expect(r.code, r.err).toBe(0);
    // LSTM, H = 32, D = 2: 4 gates of (H*D + H*H + H), then Wy [1, 32] and by [1].
    const n = 4 * (32 * 2 + 32 * 32 + 32) + 32 + 1;
    expect(r.out).toContain(`parameters (${n} values)`);
    expect(r.out).toMatch(/^network adder \(a declared model\)$/m);
    expect(r.out).toMatch(/readout {3}on the last valid step: y \[1\] from h \[32\]/);
    expect(r.out).toMatch(/^ {2}Wy +\[1, 32\] +readout +~ xavier$/m);
    expect(r.out).toContain("--- loss (WGSL) ---");
    expect(r.out).toContain("--- optimiser (JS) ---");
  });

  test("a cell in its task's default model: stacked, both directions, an embedding for token data", async () => {
    const r = await cellc(
      "compile",
      "examples/cells/gru.cell",
      "--emit",
      "network",
      "--task",
      "copy",
      "--layers",
      "2",
      "--bidirectional",
      "--dims",
      "H=4",
      "--optim",
      "sgd",
    );
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/cell {6}gru, 2 layers, both directions/);
    expect(r.out).toMatch(/layer 1: .*D = 8/); // the input of layer 1: both directions of layer 0, 2*H
    expect(r.out).toContain("l1.reverse.Un");
    expect(r.out).toMatch(
      /Wy +\[\d+, 8\] +readout +~ uniform\(-0\.35355339059327373, 0\.35355339059327373\)/,
    );
    expect(r.out).toMatch(/^ {2}optimiser sgd/m);
  });

  test("a cell without a task is refused with what to give", async () => {
    const r = await cellc("compile", "examples/cells/gru.cell", "--emit", "network");
    expect([r.code, r.err]).toEqual([1, expect.stringMatching(/needs --task NAME/)]);
  });
});
