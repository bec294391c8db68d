// The network artifact: a whole trainable network as the compiler compiled it, as plain serialisable
// data. An optional embedding, the cell stacked in layers and directions, the readout (a stateless cell
// compiled by the same pipeline), the loss and the optimiser's update, each with its kernels. Sizes are
// bound: a network artifact is for one input size, hidden size and output size.
import type { Artifact } from "./artifact.js";
import type { InitSpec } from "./init.js";

export const LOSS_KINDS = ["mse", "cross_entropy", "binary_cross_entropy"] as const;
export type LossKind = (typeof LOSS_KINDS)[number];
export const OPTIM_NAMES = ["sgd", "momentum", "adam", "adamw"] as const;
export type OptimName = (typeof OPTIM_NAMES)[number];

/** The moments each optimiser keeps per parameter (`m/Wi`, `v/Wi`; `buf/Wi`), in a device's buffer order. */
export const MOMENTS: Readonly<Record<OptimName, readonly string[]>> = {
  sgd: [],
  momentum: ["buf"],
  adam: ["m", "v"],
  adamw: ["m", "v"],
};

/** Whether a checkpoint's tensor is an optimiser's moment (`m/Wi`) rather than a parameter. */
export const isMoment = (name: string): boolean => name.includes("/");

/** Which part of the network a parameter belongs to. */
export type ParamPart = "embed" | "cell" | "readout";

/** One parameter of the network, by the name it has in `params.safetensors`. */
export interface NetworkParam {
  readonly name: string;
  readonly part: ParamPart;
  /** The cell's layer and direction (0 forward, 1 reverse); 0 for the other parts. */
  readonly layer: number;
  readonly direction: number;
  /** Its index among its cell's (or the readout's) declared parameters. */
  readonly index: number;
  readonly shape: readonly number[];
  readonly init: InitSpec;
}

/** Generated kernels of one network stage for each text target (see compiler/network/). */
export interface StageKernels {
  /** An ES module's body in the restricted JS the runtime verifies (see runtime/verify.ts). */
  readonly js: string;
  /** A WGSL module. */
  readonly wgsl: string;
}

/**
 * The source a network was compiled from, kept so that tools which need the compiler's own view of the
 * cell and the readout (the ONNX and PyTorch exporters: their IR) can compile it again without the files.
 */
export interface NetworkSource {
  /** The entry file's path, as the compiler was given it. */
  readonly file: string;
  /** The text of every file the compiler read (the entry and its imports), by the path it read it under. */
  readonly files: Readonly<Record<string, string>>;
  /** Which network of the file: a declared model, or a cell in the data's default model. */
  readonly choice: {
    readonly cell?: string;
    readonly model?: string;
    readonly layers?: number;
    readonly bidirectional?: boolean;
  };
  /** The sizes that were given (the data gave the others). */
  readonly dims: Readonly<Record<string, number>>;
  /** SHA-256 (hex) of `files`, as `sourceDigestText` writes them: a check that they are the ones compiled. */
  readonly sha256: string;
}

/** The text `NetworkSource.sha256` hashes: each file's path and text, in path order, as JSON. */
export function sourceDigestText(files: Readonly<Record<string, string>>): string {
  return JSON.stringify(
    Object.keys(files)
      .sort()
      .map((k) => [k, files[k]]),
  );
}

export interface NetworkArtifact {
  readonly format: "cellc-network";
  readonly version: 1;
  /** The declared model's name, or the cell's for a default model. */
  readonly name: string;
  /** Set when the network is a `model` block of the file. */
  readonly model?: string;
  readonly input: {
    readonly name: string;
    readonly kind: "real" | "tokens";
    /** Features per step (real) or the vocabulary size V (tokens). */
    readonly size: number;
  };
  readonly embed?: { readonly param: string; readonly V: number; readonly D: number };
  readonly cell: Artifact;
  readonly layers: number;
  readonly bidirectional: boolean;
  /** Dimension sizes of each layer (the input dimension changes after the first). */
  readonly sizes: readonly Readonly<Record<string, number>>[];
  /** Features of the cell's first output per step, directions concatenated: what the readout reads. */
  readonly features: number;
  readonly readout: Artifact;
  readonly readoutSizes: Readonly<Record<string, number>>;
  /** Output features O (classes for class targets). */
  readonly outputSize: number;
  readonly on: "last" | "every";
  readonly loss: { readonly kind: LossKind } & StageKernels;
  /** The update, and (`normWgsl`) the gradient norm on the device. */
  readonly optimizer: { readonly kind: OptimName; readonly normWgsl: string } & StageKernels;
  /** Every parameter, in the order of the network's parts (embedding, layers and directions, readout). */
  readonly params: readonly NetworkParam[];
  /** Class names of a class target (`chars`: its characters), when the data has them. */
  readonly classes?: readonly string[];
  /** What it was compiled from (set by `cellc train`, `compare` and `gradflow`). */
  readonly source?: NetworkSource;
}

/**
 * The name of a cell parameter in a network or a multi-layer model: `Wi` for one layer in one direction,
 * else `l0.Wi`, `l1.reverse.Wi`. Written once, here.
 */
export function layerParamName(prefixed: boolean, layer: number, direction: number, base: string): string {
  return prefixed ? `l${layer}.${direction ? "reverse." : ""}${base}` : base;
}

/** Far past any trained stack; it keeps a typo such as `--layers 1e9` from hanging in bookkeeping. */
export const MAX_LAYERS = 10_000;

/** The `l<k>.[reverse.]` prefix of a layer parameter's name. */
export const LAYER_PREFIX = /^l\d+\.(?:reverse\.)?/;
