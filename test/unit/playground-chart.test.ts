import { describe, expect, it } from "vitest";
import { wrap } from "../../playground/chart.js";

describe("playground chart: a message that does not fit is broken into lines", () => {
  it("at word boundaries, each line at most the width unless one word is longer", () => {
    const text = "none yet (for a task with one target per sequence: adding)";
    const lines = wrap(text, 24);
    expect(lines.join(" ")).toBe(text);
    for (const l of lines) expect(l.length).toBeLessThanOrEqual(24);
    expect(lines.length).toBe(3);
    expect(wrap("short", 24)).toEqual(["short"]);
    expect(wrap("a verylongwordindeed b", 5)).toEqual(["a", "verylongwordindeed", "b"]);
  });
});
