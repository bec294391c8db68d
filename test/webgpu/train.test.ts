// Training on WebGPU runs the network artifact on the device: per step the batch goes up and one
// read-back brings the loss and the gradient norm; the trajectory is the host's (the JS backend's, in
// float32); a run resumed from a checkpoint (device parameters and moments read back, then written
// again) continues as if it had not stopped.
import { describe, expect, test } from "vitest";
import { Network } from "../../workbench/train/network.js";
import { makeTask } from "../../workbench/tasks/index.js";
import { Trainer } from "../../workbench/train/trainer.js";
import type { OptimName, TrainConfig } from "../../workbench/train/types.js";
import { jsBackend } from "../../runtime/backend.js";
import { networkArtifact } from "../helpers.js";
import { webgpu } from "./setup.js";

const gpu = await webgpu();

interface Case {
  readonly name: string;
  readonly file: string;
  readonly task: string;
  readonly T: number;
  readonly dims: Record<string, number>;
  readonly layers?: number;
  readonly bidirectional?: boolean;
  readonly optim: OptimName;
  readonly clip?: number;
}

const CASES: Case[] = [
  {
    name: "GRU, adding (last step), Adam, clip",
    file: "examples/cells/gru.cell",
    task: "adding",
    T: 10,
    dims: { H: 8 },
    optim: "adam",
    clip: 0.5,
  },
  {
    name: "LSTM, 2 layers, bidirectional, copy (every step, cross-entropy), momentum",
    file: "examples/cells/lstm.cell",
    task: "copy",
    T: 12,
    dims: { H: 6 },
    layers: 2,
    bidirectional: true,
    optim: "momentum",
  },
  {
    name: "the tagger: embedding, 2 LSTM layers, chars, AdamW",
    file: "examples/models/tagger.cell",
    task: "chars",
    T: 12,
    dims: { D: 6, H: 8 },
    optim: "adamw",
  },
  {
    name: "GRU, sine (every step, MSE), SGD, weight decay",
    file: "examples/cells/gru.cell",
    task: "sine",
    T: 10,
    dims: { H: 8 },
    optim: "sgd",
  },
];

function setup(c: Case) {
  const data = () => makeTask(c.task, { T: c.T });
  const artifact = networkArtifact(c.file, data(), {
    dims: c.dims,
    layers: c.layers,
    bidirectional: c.bidirectional,
    optimizer: c.optim,
  });
  const cfg: TrainConfig = {
    steps: 6,
    batch: 4,
    lr: c.optim === "sgd" || c.optim === "momentum" ? 0.1 : 0.01,
    optim: c.optim,
    clip: c.clip,
    weightDecay: c.optim === "sgd" ? 0.01 : undefined,
    seed: 2,
    evalEvery: 3,
    evalBatch: 8,
  };
  return { data, artifact, cfg };
}

describe.skipIf(!gpu)("training on WebGPU", () => {
  for (const c of CASES)
    test(`${c.name}: one read-back a step, the host's trajectory`, async () => {
      const { data, artifact, cfg } = setup(c);
      const host = new Trainer(new Network(artifact, { seed: 3, backend: jsBackend }), data(), cfg);
      const net = new Network(artifact, { seed: 3, backend: gpu! });
      expect(net.device).toBeDefined();
      const dev = new Trainer(net, data(), cfg);
      const ctx = gpu!.context;
      for (let s = 1; s <= cfg.steps; s++) {
        const a = await host.step();
        const before = ctx.readBacks;
        const b = await dev.step();
        expect(ctx.readBacks - before, `read-backs at step ${s}`).toBe(1);
        expect(Math.abs(b.loss - a.loss), `loss at step ${s}`).toBeLessThan(1e-4 * Math.max(1, a.loss));
        const [na, nb] = [a.grad_norm as number, b.grad_norm as number];
        expect(Math.abs(nb - na), `gradient norm at step ${s}`).toBeLessThan(1e-4 * Math.max(1, na));
      }
      const before = ctx.readBacks;
      const [ea, eb] = [await host.evaluate(), await dev.evaluate()];
      expect(ctx.readBacks - before).toBe(1);
      expect(Math.abs(eb.loss - ea.loss)).toBeLessThan(1e-4 * Math.max(1, ea.loss));
      // Class targets: the accuracy comes back in the same read-back (a row may flip on a near tie).
      expect(eb.accuracy === undefined).toBe(ea.accuracy === undefined);
      if (ea.accuracy !== undefined)
        expect(Math.abs((eb.accuracy as number) - (ea.accuracy as number))).toBeLessThan(0.02);
      // The trained parameters, read back once.
      await net.syncHost();
      for (const [n, p] of host.net.params) {
        const q = net.params.get(n)!.data;
        const scale = Math.max(1e-3, ...Array.from(p.data, Math.abs));
        p.data.forEach((v, i) => expect(Math.abs(q[i]! - v), `${n}[${i}]`).toBeLessThan(1e-4 * scale));
      }
    }, 120_000);

  test("a resumed run continues as if it had not stopped (parameters and moments from the device)", async () => {
    const c = CASES[2]!;
    const { data, artifact, cfg } = setup(c);
    const straight = new Trainer(new Network(artifact, { seed: 3, backend: gpu! }), data(), cfg);
    const a = await straight.run();
    const first = new Trainer(new Network(artifact, { seed: 3, backend: gpu! }), data(), cfg);
    await first.run({ until: 3 });
    const ck = await first.checkpoint();
    expect([...ck.tensors.keys()].some((k) => k.startsWith("v/"))).toBe(true);
    const resumed = await Trainer.resume(ck, {
      net: new Network(artifact, { seed: 9, backend: gpu! }),
      data: data(),
    });
    const b = await resumed.run();
    // A resumed trainer's metrics start at its checkpoint's step (the earlier lines are in metrics.jsonl).
    const losses = (r: typeof a) => r.metrics.map((m) => [m.step, m.split, m.loss]);
    expect(losses(b).length).toBeGreaterThan(1);
    expect(losses(b)).toEqual(losses(a).slice(-losses(b).length));
    for (const [n, p] of a.params) expect(Array.from(b.params.get(n)!.data), n).toEqual(Array.from(p.data));
  }, 120_000);
});
