import { CellcError, type Tensor } from "../../artifact/tensor.js";
import type { CellIR } from "../ir/cell.js";
import { recognise, type Gate } from "./recognise.js";

export interface ImportOptions {
  readonly layers?: number;
  readonly bidirectional?: boolean;
  /** `l0.Wi` names even for one layer in one direction. Default: layers > 1 or bidirectional. */
  readonly prefixed?: boolean;
}

/**
 * Maps an nn.LSTM / nn.GRU / nn.RNN state dict (`weight_ih_l0`, `bias_hh_l1_reverse`, gates stacked by rows
 * in PyTorch's order i, f, g, o and r, z, n) onto a cell's parameters. Which parameter is which gate's
 * comes from the cell's equations (see recognise.ts), not from its names.
 */
export function importTorch(
  ir: CellIR,
  state: ReadonlyMap<string, Tensor>,
  opts: ImportOptions = {},
): Map<string, Tensor> {
  const nat = recognise(ir);
  const fail = (why: string): never => {
    throw new CellcError(`cannot import PyTorch weights into cell '${ir.name}': ${why}`);
  };
  if (!nat) return fail("its equations are not those of nn.LSTM, nn.GRU or nn.RNN");
  const acts = nat.acts.map((a) => a.name).join(",");
  let gates: Gate[];
  let kind: string;
  if (nat.op === "LSTM") {
    if (acts !== "Sigmoid,Tanh,Tanh") fail(`nn.LSTM uses sigmoid and tanh, the cell ${acts}`);
    if (Object.values(nat.gates).some((g) => g.peephole)) fail("nn.LSTM has no peepholes");
    gates = [nat.gates.i, nat.gates.f, nat.gates.c, nat.gates.o];
    kind = "nn.LSTM";
  } else if (nat.op === "GRU") {
    if (acts !== "Sigmoid,Tanh") fail(`nn.GRU uses sigmoid and tanh, the cell ${acts}`);
    if (nat.linearBeforeReset !== 1)
      fail("nn.GRU applies the reset gate after the recurrent matmul (r * (U @ h + b)), the cell before it");
    gates = [nat.gates.r, nat.gates.z, nat.gates.h];
    kind = "nn.GRU";
  } else {
    if (acts !== "Tanh" && acts !== "Relu") fail(`nn.RNN uses tanh or relu, the cell ${acts}`);
    gates = [nat.gate];
    kind = "nn.RNN";
  }
  const layers = opts.layers ?? 1;
  const dirs = opts.bidirectional ? 2 : 1;
  const prefixed = opts.prefixed ?? (layers > 1 || dirs > 1);
  const used = new Set<string>();
  const out = new Map<string, Tensor>();
  const G = gates.length;
  for (let l = 0; l < layers; l++)
    for (let d = 0; d < dirs; d++) {
      const sfx = `_l${l}${d ? "_reverse" : ""}`;
      const pre = prefixed ? `l${l}.${d ? "reverse." : ""}` : "";
      const get = (base: string, optional: boolean): Tensor | undefined => {
        const name = base + sfx;
        const t = state.get(name);
        if (!t && !optional)
          fail(
            `the state dict has no '${name}' (a ${kind} with ${layers} layer(s)${dirs > 1 ? ", bidirectional" : ""})`,
          );
        if (t) used.add(name);
        return t;
      };
      const wih = get("weight_ih", false)!;
      const whh = get("weight_hh", false)!;
      const [bih, bhh] = [get("bias_ih", true), get("bias_hh", true)];
      for (const [name, t, cols] of [
        [`weight_ih${sfx}`, wih, 2],
        [`weight_hh${sfx}`, whh, 2],
        [`bias_ih${sfx}`, bih, 1],
        [`bias_hh${sfx}`, bhh, 1],
      ] as const)
        if (t && (t.shape.length !== cols || t.shape[0]! % G !== 0 || t.shape[0] !== whh.shape[0]))
          fail(
            `'${name}' has shape [${t.shape.join(", ")}]; ${kind} stacks ${G} gates of H rows ([${G}*H${cols === 2 ? ", ..." : ""}])`,
          );
      if (whh.shape[1]! * G !== whh.shape[0])
        fail(`'weight_hh${sfx}' has shape [${whh.shape.join(", ")}]; ${kind}'s is [${G}*H, H]`);
      const H = whh.shape[0]! / G;
      const rows = (t: Tensor, k: number): Tensor => {
        const w = t.shape.length === 2 ? t.shape[1]! : 1;
        return {
          dtype: t.dtype,
          shape: t.shape.slice(),
          data: t.data.slice(k * H * w, (k + 1) * H * w),
        } as Tensor;
      };
      const shaped = (t: Tensor): Tensor => ({ ...t, shape: t.shape.length === 2 ? [H, t.shape[1]!] : [H] });
      const zero = (t: Tensor): Tensor => ({ ...t, data: t.data.map(() => 0) }) as Tensor;
      const sum = (a: Tensor, b: Tensor): Tensor =>
        ({ ...a, data: a.data.map((v, i) => v + b.data[i]!) }) as Tensor;
      const put = (p: string, t: Tensor) => out.set(pre + p, shaped(t));
      const assign = (names: readonly string[], values: (Tensor | undefined)[], what: string) => {
        const given = values.filter((v): v is Tensor => v !== undefined);
        if (names.length === 0) {
          if (given.some((v) => v.data.some((x) => x !== 0)))
            fail(`the cell has no bias for ${what}, but the state dict's is not zero`);
          return;
        }
        if (names.length === 1)
          return given.length && put(names[0]!, given.length === 2 ? sum(given[0]!, given[1]!) : given[0]!);
        names.forEach((n, i) => (given[i] ? put(n, given[i]!) : given[0] && put(n, zero(given[0]))));
      };
      gates.forEach((g, k) => {
        put(g.W, rows(wih, k));
        put(g.U, rows(whh, k));
        const [bi, bh] = [bih && rows(bih, k), bhh && rows(bhh, k)];
        if (g.inner) {
          assign(g.biases, [bi], `gate ${k} (input side)`);
          assign(g.inner, [bh], `gate ${k} (recurrent side)`);
        } else assign(g.biases, [bi, bh], `gate ${k}`);
        // a cell bias the state dict has no value for (bias=False) starts at zero
        for (const b of [...g.biases, ...(g.inner ?? [])])
          if (!out.has(pre + b))
            out.set(pre + b, {
              dtype: whh.dtype,
              shape: [H],
              data: whh.data.slice(0, H).map(() => 0),
            } as Tensor);
      });
    }
  const extra = [...state.keys()].filter((k) => !used.has(k));
  if (extra.length) {
    // What the names say the state dict holds (weight_hh_l<k>[_reverse]), to suggest how to import it.
    const found = [...state.keys()].map((k) => /^weight_hh_l(\d+)(_reverse)?$/.exec(k)).filter((m) => m);
    const L = Math.max(0, ...found.map((m) => Number(m![1]) + 1));
    const both = found.some((m) => m![2]);
    const suggest = `; it holds ${L} layer(s)${both ? " in both directions" : ""}: import with --layers ${L}${both ? " --bidirectional" : ""}`;
    fail(
      `unexpected entries ${extra.map((k) => `'${k}'`).join(", ")} for a ${kind} with ${layers} layer(s)${dirs > 1 ? ", bidirectional" : ""}${L > 0 && (L !== layers || both !== dirs > 1) ? suggest : ""}`,
    );
  }
  return out;
}
