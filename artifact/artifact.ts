import type { Dim, Type } from "./shape.js";
import type { WasmTarget } from "./wasm.js";
import type { BufferDecl, KernelName, Pack, ScanState, Signature } from "./schedule.js";

/**
 * The compiled artifact: everything a runtime needs to run a cell, as plain serialisable data. The runtime
 * reads this and nothing of the compiler's front end: the cell's signature, the schedule's buffers and
 * packs, each kernel's bindings, and the kernels as generated text for each target.
 */
export interface KernelInfo {
  readonly rows: "B" | "TB";
  readonly bindings: readonly { readonly buffer: number; readonly shift: 0 | 1 }[];
  readonly masks: boolean;
}

export interface WgslEntryInfo {
  readonly name: string;
  readonly dispatch: WgslDispatch;
  readonly phase: "run" | "premask" | "postmask";
  /** A GEMM's size: x * y outputs of `inner` multiply-adds each (for reports: FLOPs per dispatch). */
  readonly gemm?: { readonly x: WgslExtent; readonly y: WgslExtent; readonly inner: WgslExtent };
}
/** A count of threads, rows or tiles: (rows or 1) x (a dimension's size or 1). */
export interface WgslExtent {
  readonly rows: boolean;
  readonly dim?: Dim;
}
export type WgslDispatch =
  | { readonly kind: "linear"; readonly extent: WgslExtent } // one thread per element
  | {
      // A GEMM: `tile` (along x) by `tileY` outputs per workgroup of `threads` (x, y) invocations.
      readonly kind: "tiles";
      readonly x: WgslExtent;
      readonly y: WgslExtent;
      readonly tile: number;
      readonly tileY: number;
      readonly threads: readonly [number, number];
    }
  | { readonly kind: "rows"; readonly rows: WgslExtent }; // one workgroup per row

/**
 * The WGSL kernels' buffer layout: every buffer and scratch region starts at a multiple of 4 floats, and
 * the rows of every buffer but the parameters and their gradients are padded to a multiple of 4 floats
 * (runtime/layout.ts `planLayout` with this alignment), so that the GEMMs load and store `vec4<f32>`.
 */
export const WGSL_ROW_ALIGN = 4;

/** Where a buffer lives for the WGSL kernels: with f16 storage, the tape and the packed weights are float16. */
export type WgslArena = "mem" | "pmem" | "hmem" | "hpmem";
export function wgslArena(b: BufferDecl, f16: boolean): WgslArena {
  if (f16 && b.kind === "tape") return "hmem";
  if (f16 && b.kind === "pack") return "hpmem";
  return b.arena;
}

export interface WgslKernelText {
  readonly code: string;
  /**
   * The same module using subgroup operations (WebGPU's `subgroups` feature), for a device that has it;
   * absent when the module has nothing to gain from them.
   */
  readonly codeSubgroups?: string;
  /**
   * The module with f16 storage (WebGPU's `shader-f16`): the tape in `hmem` (binding 5) and the packed
   * weights in `hpmem` (binding 6) as float16, everything computed and accumulated in float32; absent when
   * the kernel touches neither. `codeF16Subgroups`: the same with subgroup operations.
   */
  readonly codeF16?: string;
  readonly codeF16Subgroups?: string;
  readonly entries: readonly WgslEntryInfo[];
  /** Scratch regions in `mem` (offsets table entries after the bindings), by type. */
  readonly scratch: readonly Type[];
}

export interface Artifact {
  readonly format: "cellc-artifact";
  readonly version: 1;
  readonly signature: Signature;
  readonly buffers: readonly BufferDecl[];
  readonly packs: readonly Pack[];
  readonly kernels: Readonly<Record<KernelName, KernelInfo>>;
  /**
   * The states run as scans over time, between `before` and `step` forward and between `loop` and `after`
   * backward (see ScanState); absent when there are none. Each backend runs them with a scan of its own.
   */
  readonly scans?: readonly ScanState[];
  /** The ES module of the JS kernels (see codegen/js.ts). */
  readonly js?: string;
  /** One WGSL module per kernel (see codegen/wgsl.ts). */
  readonly wgsl?: Readonly<Record<KernelName, WgslKernelText>>;
  /** The kernels as WebAssembly SIMD (see wasm/elementwise.ts): the wasm backend's. */
  readonly wasm?: WasmTarget;
}
