// The trainer against PyTorch: the same weights on the same batches must follow torch.optim's loss
// trajectory and end at its weights to float32 rounding (fixtures: gen_train_torch.py).
import { readFileSync } from "node:fs";
import { describe, expect, test } from "vitest";
import type { Tensor } from "../../runtime/tensor.js";
import { Network } from "../../workbench/train/network.js";
import { Trainer } from "../../workbench/train/trainer.js";
import type { Batch, DataSource, LossKind, OptimName } from "../../workbench/train/types.js";
import { networkArtifact } from "../helpers.js";
import type { Backend } from "../../runtime/backend.js";
import { webgpu } from "../webgpu/setup.js";

interface Case {
  name: string;
  cell: "rnn" | "lstm";
  on: "last" | "every";
  loss: LossKind;
  optim: OptimName;
  lr: number;
  momentum?: number;
  weight_decay?: number;
  clip?: number;
  T: number;
  B: number;
  D: number;
  H: number;
  O: number;
  init: Record<string, { shape: number[]; data: number[] }>;
  batches: { x: number[]; target: number[] }[];
  losses: number[];
  grad_norms: number[];
  final: Record<string, { shape: number[]; data: number[] }>;
}

const fixtures = JSON.parse(readFileSync(new URL("fixtures/train_torch.json", import.meta.url), "utf8")) as {
  cases: Case[];
};

/** The fixture's batches, in order, whatever the generator. */
function fixedData(c: Case): DataSource {
  let k = 0;
  const batch = (): Batch => {
    const b = c.batches[k++ % c.batches.length]!;
    const classes = c.loss === "cross_entropy";
    const tshape = c.on === "last" ? [c.B] : [c.T, c.B];
    return {
      inputs: new Map([["x", { dtype: "f32", shape: [c.T, c.B, c.D], data: Float32Array.from(b.x) }]]),
      target: classes
        ? { dtype: "i32", shape: tshape, data: Int32Array.from(b.target) }
        : { dtype: "f32", shape: [...tshape, c.O], data: Float32Array.from(b.target) },
    };
  };
  return {
    name: c.name,
    summary: "",
    T: c.T,
    inputSize: c.D,
    inputKind: "real",
    outputSize: c.O,
    on: c.on,
    loss: c.loss,
    batch,
  };
}

// The default backend (wasm: the host updates the parameters) and WebGPU, where the whole step runs on
// the device (the artifact's loss and optimiser kernels) and only the loss and gradient norm come back.
const gpu = await webgpu();
const backends: [string, Backend | undefined][] = [["default", undefined]];
if (gpu) backends.push(["webgpu", gpu]);

describe.each(backends)("training follows PyTorch (%s backend)", (_, backend) => {
  for (const c of fixtures.cases)
    test(c.name, async () => {
      const params = new Map<string, Tensor>(
        Object.entries(c.init).map(([n, t]) => [
          n,
          { dtype: "f32", shape: t.shape, data: Float32Array.from(t.data) },
        ]),
      );
      const data = fixedData(c);
      const artifact = networkArtifact(`examples/cells/${c.cell}.cell`, data, {
        dims: { H: c.H },
        optimizer: c.optim,
      });
      const net = new Network(artifact, { params, backend });
      if (backend) expect(net.device).toBeDefined();
      const trainer = new Trainer(net, data, {
        steps: c.losses.length,
        batch: c.B,
        lr: c.lr,
        optim: c.optim,
        momentum: c.momentum,
        weightDecay: c.weight_decay ?? 0,
        clip: c.clip,
        seed: 0,
      });
      for (let s = 0; s < c.losses.length; s++) {
        const m = await trainer.step();
        expect(Math.abs(m.loss - c.losses[s]!)).toBeLessThan(2e-5 * Math.max(1, c.losses[s]!));
        if (c.grad_norms.length)
          expect(Math.abs((m.grad_norm as number) - c.grad_norms[s]!)).toBeLessThan(2e-5 * c.grad_norms[s]!);
      }
      await net.syncHost();
      for (const [n, t] of Object.entries(c.final)) {
        const ours = net.params.get(n)!.data;
        const scale = Math.max(...t.data.map(Math.abs));
        t.data.forEach((v, i) => expect(Math.abs(ours[i]! - v), `${n}[${i}]`).toBeLessThan(2e-5 * scale));
      }
    });
});
