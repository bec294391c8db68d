import { execFileSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { hasTorch, PYTHON } from "./python.js";

/** examples/torch_ddp.py: the exported LSTM trained with DDP on 2 CPU processes (gloo). */
describe.skipIf(!hasTorch)("DDP example", () => {
  it("trains, and both replicas end identical", () => {
    const out = join(mkdtempSync(join(tmpdir(), "cellc-ddp-")), "lstm_cell.py");
    execFileSync(process.execPath, [
      "bin/cellc.js",
      "compile",
      "examples/cells/lstm.cell",
      "--target",
      "torch",
      "--out",
      out,
    ]);
    const log = execFileSync(PYTHON, ["examples/torch_ddp.py", out], { encoding: "utf8" });
    expect(log).toMatch(/replicas identical: True; loss [0-9.]+ -> [0-9.]+/);
  }, 120_000);
});
