import { readFileSync, writeFileSync, existsSync, readdirSync } from "node:fs";
import { expect } from "vitest";
import { checkProgram } from "../compiler/driver.js";

export const UPDATE = process.env.UPDATE_GOLDEN === "1";
export const nodeHost = { read: (p: string) => readFileSync(p, "utf8") };

/** Compares text with a reviewed golden file; UPDATE_GOLDEN=1 rewrites it (review the diff). */
export function expectGolden(path: string, actual: string): void {
  if (UPDATE || !existsSync(path)) {
    if (!UPDATE) throw new Error(`missing golden file ${path}: run with UPDATE_GOLDEN=1 and review it`);
    writeFileSync(path, actual);
    return;
  }
  expect(actual).toBe(readFileSync(path, "utf8"));
}

export function builtinCellFiles(): string[] {
  return readdirSync("examples/cells")
    .filter((f) => f.endsWith(".cell"))
    .sort()
    .map((f) => `examples/cells/${f}`);
}

/** Checks an in-memory source; imports are read from disk. */
export function checkSource(text: string, file = "test.cell") {
  return checkProgram(file, nodeHost, text);
}
