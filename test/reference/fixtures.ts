import { readFileSync } from "node:fs";
import { readSafetensors } from "../../api/index.js";

/** The PyTorch fixtures that test/reference/gen_torch.py writes: one folder per case. */
export interface Case {
  name: string;
  cell: string;
  layers: number;
  bidirectional: boolean;
}
export const DIR = "test/fixtures/torch";
export const cases: Case[] = JSON.parse(readFileSync(`${DIR}/cases.json`, "utf8"));
/** A fixture's tensors: `params`, `inputs` or `expected` of the case named. */
export const loadFixture = (name: string, f: string) =>
  readSafetensors(readFileSync(`${DIR}/${name}/${f}.safetensors`));
