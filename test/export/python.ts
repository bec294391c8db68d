import { execFileSync } from "node:child_process";

/** Debian's python3 with python3-torch; in CI (env CI set) a missing torch fails instead of skipping. */
export const PYTHON = "/usr/bin/python3";
export const hasTorch = (() => {
  try {
    execFileSync(PYTHON, ["-c", "import torch"], { stdio: "ignore" });
    return true;
  } catch {
    if (process.env.CI) throw new Error(`PyTorch is required in CI: '${PYTHON} -c "import torch"' failed`);
    return false;
  }
})();
