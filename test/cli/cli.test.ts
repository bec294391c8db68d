import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { compileCell, Model, tensor } from "../../api/index.js";
import { readSafetensorsFile, writeSafetensors } from "../../runtime/safetensors.js";
import { hasWebGpu } from "../webgpu/setup.js";

// These spawn the built command (`npm run build` first), as a user runs it.
const tmp = mkdtempSync(join(tmpdir(), "cellc-cli-"));
const cellc = (args: string[], env: Record<string, string> = {}) =>
  spawnSync(process.execPath, ["bin/cellc.js", ...args], {
    encoding: "utf8",
    env: { ...process.env, ...env },
  });

const rnn = compileCell(readFileSync("examples/cells/rnn.cell", "utf8"));
const model = new Model(rnn, { dims: { D: 2, H: 3 }, seed: 4 });
const P = join(tmp, "p.safetensors");
writeFileSync(P, writeSafetensors(model.params));
const X = join(tmp, "x.safetensors");
const xData = Array.from({ length: 4 * 2 * 2 }, (_, i) => Math.sin(i));
writeFileSync(X, writeSafetensors({ x: tensor("f32", [4, 2, 2], xData) }));
const inputs = (name: string, ts: Parameters<typeof writeSafetensors>[0]) => {
  const path = join(tmp, name);
  writeFileSync(path, writeSafetensors(ts));
  return path;
};
const run = (params: string, xs: string, out: string, more: string[] = [], env?: Record<string, string>) =>
  cellc(["run", "examples/cells/rnn.cell", "--params", params, "--inputs", xs, "--out", out, ...more], env);
const noStack = (s: string) => expect(s).not.toMatch(/\n\s+at |internal error/);

describe("cellc run --out: the old file survives any failure, and no temporary file is left", () => {
  const OLD = new Uint8Array([1, 2, 3, 4, 5]);
  const setup = (name: string) => {
    const dir = mkdtempSync(join(tmp, name));
    writeFileSync(join(dir, "out.safetensors"), OLD);
    return dir;
  };
  const intact = (dir: string) => {
    expect(new Uint8Array(readFileSync(join(dir, "out.safetensors")))).toEqual(OLD);
    expect(readdirSync(dir)).toEqual(["out.safetensors"]);
  };
  it("a shape error after reading the inputs", () => {
    const dir = setup("shape-");
    const r = run(P, inputs("bad-x", { x: tensor("f32", [4, 2, 5]) }), join(dir, "out.safetensors"));
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/input 'x' has shape \[4, 2, 5\]/);
    intact(dir);
  });
  it("a write that fails half-way (file size limit: EFBIG)", () => {
    const dir = setup("efbig-");
    const big = inputs("p-big", new Model(rnn, { dims: { D: 2, H: 32 } }).params); // 4 KiB of grad.U
    // 1 KiB is less than the output file: the old code truncated the file, then failed.
    const r = spawnSync(
      "bash",
      [
        "-c",
        `trap '' XFSZ; ulimit -f 1; exec "${process.execPath}" bin/cellc.js run examples/cells/rnn.cell --params ${big} --inputs ${X} --out ${join(dir, "out.safetensors")} --grad`,
      ],
      { encoding: "utf8" },
    );
    expect(r.stderr).toMatch(/cellc: error: cannot write '.*out\.safetensors': .*(EFBIG|too large)/);
    expect(r.status).toBe(1);
    intact(dir);
  });
  it("a folder that cannot be written", () => {
    const r = run(P, X, join(P, "out.safetensors")); // a file where the folder should be
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/cellc: error: cannot write '.*p\.safetensors\/out\.safetensors': .*ENOTDIR/);
    noStack(r.stderr);
    if (process.getuid?.() !== 0) {
      const dir = setup("ro-");
      spawnSync("chmod", ["555", dir]);
      const r2 = run(P, X, join(dir, "out.safetensors"));
      spawnSync("chmod", ["755", dir]);
      expect(r2.status).toBe(1);
      expect(r2.stderr).toMatch(/cannot write/);
      intact(dir);
    }
  });
});

describe("cellc run: inputs in other dtypes, odd sizes and non-finite values", () => {
  it("NaN and Inf in the inputs: the run completes, warns, and says so in the file's metadata", () => {
    const out = join(tmp, "nan.safetensors");
    const bad = xData.slice();
    bad[0] = NaN;
    bad[5] = Infinity;
    const r = run(P, inputs("nan-x", { x: tensor("f32", [4, 2, 2], bad) }), out);
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/cellc: warning: non-finite values \(NaN or Inf\) in inputs: x\n/);
    expect(r.stderr).toMatch(/cellc: warning: non-finite values \(NaN or Inf\) in outputs: h, h\.final\n/);
    const file = readSafetensorsFile(readFileSync(out));
    expect(file.metadata.get("nonfinite")).toBe("inputs,outputs");
    expect(file.metadata.get("nonfinite.inputs")).toBe("x");
    expect(Number.isNaN(file.tensors.get("h")!.data[0])).toBe(true);
    const clean = run(P, X, join(tmp, "clean.safetensors"));
    expect(clean.stderr).toBe("");
    expect(readSafetensorsFile(readFileSync(join(tmp, "clean.safetensors"))).metadata.size).toBe(0);
  });
  it("F16 parameters and I64 seq_lens are read; a float seq_lens is refused", () => {
    // Values that F16 holds exactly, so the F16 run must equal the F32 one.
    const f16 = new Map(
      [...model.params].map(([n, t]) => [n, Array.from(t.data, (v) => Math.round(v * 1024) / 1024)]),
    );
    const p32 = inputs(
      "p32",
      Object.fromEntries([...f16].map(([n, v]) => [n, tensor("f32", model.params.get(n)!.shape, v)])),
    );
    const header: Record<string, unknown> = {};
    const chunks: number[] = [];
    for (const [n, v] of f16) {
      header[n] = {
        dtype: "F16",
        shape: model.params.get(n)!.shape,
        data_offsets: [chunks.length, chunks.length + 2 * v.length],
      };
      for (const x of v) {
        // binary16 encoding of x, |x| < 2 and a multiple of 2^-10: exact.
        const sign = x < 0 ? 0x8000 : 0;
        const a = Math.abs(x);
        let bits = 0;
        if (a !== 0) {
          const e = Math.floor(Math.log2(a));
          bits = ((e + 15) << 10) | Math.round((a / 2 ** e - 1) * 1024);
        }
        chunks.push((sign | bits) & 0xff, (sign | bits) >> 8);
      }
    }
    const json = new TextEncoder().encode(JSON.stringify(header));
    const p16 = new Uint8Array(8 + json.length + chunks.length);
    new DataView(p16.buffer).setBigUint64(0, BigInt(json.length), true);
    p16.set(json, 8);
    p16.set(chunks, 8 + json.length);
    writeFileSync(join(tmp, "p16"), p16);
    const lens64 = new Uint8Array(new BigInt64Array([3n, 4n]).buffer);
    const xs = readFileSync(
      inputs("x-lens32", { x: tensor("f32", [4, 2, 2], xData), seq_lens: tensor("i32", [2], [3, 4]) }),
    );
    // The same inputs with seq_lens as I64: rewrite the header by hand.
    const xOnly = readSafetensorsFile(xs).tensors.get("x")!;
    const hdr = new TextEncoder().encode(
      JSON.stringify({
        seq_lens: { dtype: "I64", shape: [2], data_offsets: [0, 16] },
        x: { dtype: "F32", shape: [4, 2, 2], data_offsets: [16, 16 + 64] },
      }),
    );
    const x64 = new Uint8Array(8 + hdr.length + 80);
    new DataView(x64.buffer).setBigUint64(0, BigInt(hdr.length), true);
    x64.set(hdr, 8);
    x64.set(lens64, 8 + hdr.length);
    x64.set(new Uint8Array(new Float32Array(xOnly.data).buffer), 8 + hdr.length + 16);
    writeFileSync(join(tmp, "x-lens64"), x64);
    const a = run(p32, join(tmp, "x-lens32"), join(tmp, "a.safetensors"));
    const b = run(join(tmp, "p16"), join(tmp, "x-lens64"), join(tmp, "b.safetensors"));
    expect(a.stderr).toBe("");
    expect(b.stderr).toBe("");
    const ha = readSafetensorsFile(readFileSync(join(tmp, "a.safetensors"))).tensors.get("h")!;
    const hb = readSafetensorsFile(readFileSync(join(tmp, "b.safetensors"))).tensors.get("h")!;
    expect(Array.from(hb.data)).toEqual(Array.from(ha.data));
    expect(ha.data[3 * 2 * 3]).toBe(0); // row 0 has length 3: its step 3 is zero
    const fl = run(
      P,
      inputs("x-lensf", { x: tensor("f32", [4, 2, 2]), seq_lens: tensor("f32", [2], [3, 4]) }),
      join(tmp, "c"),
    );
    expect(fl.status).toBe(1);
    expect(fl.stderr).toMatch(
      /seq_lens must be an integer tensor \(I32 or I64\) of shape \[B\], got F32 \[2\]/,
    );
  });
  it("T = 0 writes empty outputs", () => {
    const r = run(P, inputs("x-t0", { x: tensor("f32", [0, 2, 2]) }), join(tmp, "t0.safetensors"), [
      "--grad",
    ]);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    const t = readSafetensorsFile(readFileSync(join(tmp, "t0.safetensors"))).tensors;
    expect(t.get("h")!.shape).toEqual([0, 2, 3]);
    expect(t.get("grad.x")!.shape).toEqual([0, 2, 2]);
  });
  it("--layers 2 with a one-layer file names the missing and unexpected parameters", () => {
    const r = run(P, X, join(tmp, "l2"), ["--layers", "2"]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(
      /cellc: error: missing parameters 'l0\.W', .*; unexpected parameters 'U', 'W', 'b'.*; the file has 'W': for several layers or directions parameters are named l<k>\.\[reverse\.\]<name>/,
    );
    expect(r.stderr).not.toMatch(/dimension/);
  });
  it("a parameter the cell declares but never uses: a warning, and the run completes", () => {
    const cell = join(tmp, "unused.cell");
    writeFileSync(
      cell,
      readFileSync("examples/cells/rnn.cell", "utf8").replace(
        "param b : [H] = 0",
        "param b : [H] = 0\n  param V : [H]",
      ),
    );
    const p = inputs("p-unused", { ...Object.fromEntries(model.params), V: tensor("f32", [3]) });
    const r = cellc(["run", cell, "--params", p, "--inputs", X, "--out", join(tmp, "u.safetensors")]);
    expect(cellc(["check", cell]).stderr).toMatch(/warning\[W001\]: parameter 'V' is never used/);
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/cellc: warning: parameter 'V' is never used by 'rnn': ignored/);
  });
});

describe("cellc: the command line", () => {
  it("--version prints the version of package.json", () => {
    const r = cellc(["--version"]);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(`cellc ${JSON.parse(readFileSync("package.json", "utf8")).version}\n`);
  });
  it("CMD --help (or -h) prints that command's usage and exits 0, whatever else is on the line", () => {
    for (const argv of [
      ["train", "--help"],
      ["train", "x.cell", "--steps", "9", "-h"],
      ["predict", "--help"],
    ]) {
      const r = cellc(argv);
      expect(r.status).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^usage:\n  cellc ${argv[0]} `));
      expect(r.stdout).not.toMatch(/cellc compare/);
    }
  });
  it("a command named like an Object property is an unknown command", () => {
    for (const cmd of ["toString", "constructor", "__proto__"]) {
      const r = cellc([cmd, "x.cell"]);
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(new RegExp(`unknown command '${cmd}'`));
    }
  });
  it("a dimension only the inputs have (a state c[D]) is bound from x, for two layers too", () => {
    const cell = join(tmp, "xdim.cell");
    writeFileSync(
      cell,
      "cell c {\n  input x[D]\n  state h[H], c[D]\n  param W : [H, H]\n  h' = tanh(W @ h + sum(c))\n  c' = x\n  output h'\n}\n",
    );
    const p = inputs("p-xdim", { "l0.W": tensor("f32", [2, 2]), "l1.W": tensor("f32", [2, 2]) });
    const r = cellc([
      "run",
      cell,
      "--params",
      p,
      "--inputs",
      X,
      "--out",
      join(tmp, "xdim.safetensors"),
      "--layers",
      "2",
    ]);
    expect(r.stderr).toBe("");
    expect(r.stdout).toMatch(
      /h \[4, 2, 2\], l0\.h\.final \[2, 2\], l0\.c\.final \[2, 2\], l1\.h\.final \[2, 2\], l1\.c\.final \[2, 2\]/,
    );
  });
  it("the usage text lists --backend wasm|js|webgpu and --threads", () => {
    expect(cellc(["help"]).stdout).toMatch(/run .*\[--backend wasm\|js\|webgpu\] \[--threads N\|all\]/);
  });
  it("--emit with --target ... --out is refused", () => {
    const dir = join(tmp, "emit-target");
    const r = cellc(["compile", "examples/cells/rnn.cell", "--emit", "ir", "--target", "js", "--out", dir]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(
      /--emit prints to standard output and --target writes files to --out DIR: give one/,
    );
    expect(existsSync(dir)).toBe(false);
  });
  const closedEarly = (args: string[], which: "stdout" | "stderr") =>
    new Promise<{ code: number | null; signal: string | null; other: string }>((resolve) => {
      const child = spawn(process.execPath, ["bin/cellc.js", ...args], { stdio: ["ignore", "pipe", "pipe"] });
      child[which].destroy(); // the reader goes away before cellc writes
      let other = "";
      child[which === "stdout" ? "stderr" : "stdout"].on("data", (d) => (other += d));
      child.on("close", (code, signal) => resolve({ code, signal, other }));
    });
  it("a closed standard output (`| head`) ends quietly, without EPIPE", async () => {
    for (let i = 0; i < 3; i++) {
      const r = await closedEarly(["compile", "examples/cells/lstm.cell", "--emit", "ir"], "stdout");
      expect(r.other).toBe("");
      expect(r.code).toBe(0);
    }
  });
  it("a closed standard error keeps the exit code of the command", async () => {
    const r = await closedEarly(["check", "test/errors/E040.cell"], "stderr");
    expect(r.code).toBe(1);
  });
  it.skipIf(!hasWebGpu)("WebGPU: Dawn's 'artificially reduced' warnings only with CELLC_DEBUG", () => {
    const args = ["--backend", "webgpu"];
    const quiet = run(P, X, join(tmp, "gpu.safetensors"), args);
    expect(quiet.status).toBe(0);
    expect(quiet.stderr).not.toMatch(/artificially reduced/);
    expect(quiet.stdout).toMatch(/wrote .* \(webgpu, f32\)/);
    const debug = run(P, X, join(tmp, "gpu.safetensors"), args, { CELLC_DEBUG: "1" });
    expect(debug.status).toBe(0);
    // Where this platform's Dawn prints them (lavapipe does), they pass through with CELLC_DEBUG.
    if (/artificially reduced/.test(debug.stderr)) expect(quiet.stderr).toBe("");
  });
});
