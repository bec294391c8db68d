// A checkpoint as bytes: the parameters and optimiser moments in one safetensors file whose metadata holds
// the state (step, RNG states, optimiser count, config, what rebuilds the network), so that the state
// commits together with the weights; and the same state as JSON for people and tools. The loader trusts
// the safetensors file. Writing them to a folder, atomically, is cli/checkpoint.ts's.
import { readSafetensorsFile, writeSafetensors } from "../../runtime/safetensors.js";
import { CellcError, type Tensor } from "../../runtime/tensor.js";

export const WEIGHTS_FILE = "checkpoint.safetensors";
export const STATE_FILE = "checkpoint.json";
const META_KEY = "cellc.checkpoint";

/** A checkpoint's contents: tensors by name (parameters, and moments as `<kind>/<name>`) and the state. */
export interface Checkpoint {
  readonly tensors: ReadonlyMap<string, Tensor>;
  readonly state: unknown;
}

export function encodeCheckpoint(ck: Checkpoint): { weights: Uint8Array; json: Uint8Array } {
  const json = JSON.stringify(ck.state);
  return {
    weights: writeSafetensors(ck.tensors, new Map([[META_KEY, json]])),
    json: new TextEncoder().encode(JSON.stringify(ck.state, null, 1) + "\n"),
  };
}

/** The checkpoint in a weights file's bytes; `where` names the file in errors. */
export function decodeCheckpoint(
  bytes: Uint8Array,
  where: string,
): { tensors: Map<string, Tensor>; state: unknown } {
  const f = readSafetensorsFile(bytes, `checkpoint '${where}'`);
  const text = f.metadata.get(META_KEY);
  if (text === undefined)
    throw new CellcError(`'${where}' is not a cellc checkpoint (no ${META_KEY} metadata)`);
  try {
    return { tensors: f.tensors, state: JSON.parse(text) as unknown };
  } catch {
    throw new CellcError(`the state in checkpoint '${where}' is not valid JSON`);
  }
}
