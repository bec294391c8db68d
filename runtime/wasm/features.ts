// What this engine's WebAssembly has beyond SIMD128. Relaxed SIMD's f32x4.relaxed_madd is one fused
// multiply-add where the CPU has FMA (a multiply and an add elsewhere): the GEMM micro-kernel's inner
// instruction, ~1.25x the GEMM's speed here. It is standard WebAssembly 3.0, on by default from V8 11.4
// (Chrome 114, Node 22); Node 20's V8 has it behind a flag, which is switched on here (the flag only adds
// instructions to what validates, for every module of the process).
import { DEFAULT_TILING, type GemmTiling } from "../../kernels/gemm.js";

// (module (func (param v128 v128 v128) (result v128) local.get 0 local.get 1 local.get 2 f32x4.relaxed_madd))
// prettier-ignore
const PROBE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x01, 0x60, 0x03, 0x7b, 0x7b, 0x7b, 0x01,
  0x7b, 0x03, 0x02, 0x01, 0x00, 0x0a, 0x0d, 0x01, 0x0b, 0x00, 0x20, 0x00, 0x20, 0x01, 0x20, 0x02, 0xfd,
  0x85, 0x02, 0x0b,
]);

interface V8Flags {
  setFlagsFromString(flags: string): void;
}

let relaxed: boolean | undefined;

/** Whether relaxed SIMD validates here (on Node 20, after switching on its V8 flag). */
export function relaxedSimd(): boolean {
  if (relaxed !== undefined) return relaxed;
  if (!WebAssembly.validate(PROBE)) {
    const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
    const v8 = proc?.getBuiltinModule?.("node:v8") as V8Flags | undefined;
    v8?.setFlagsFromString("--experimental-wasm-relaxed-simd");
  }
  return (relaxed = WebAssembly.validate(PROBE));
}

/** The GEMM tiling this engine runs: the default, with fused multiply-adds where relaxed SIMD exists. */
export function engineTiling(): GemmTiling {
  return { ...DEFAULT_TILING, fma: relaxedSimd() };
}
