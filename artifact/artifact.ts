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
}
/** A count of threads, rows or tiles: (rows or 1) x (a dimension's size or 1). */
export interface WgslExtent {
  readonly rows: boolean;
  readonly dim?: Dim;
}
export type WgslDispatch =
  | { readonly kind: "linear"; readonly extent: WgslExtent } // one thread per element
  | { readonly kind: "tiles"; readonly x: WgslExtent; readonly y: WgslExtent; readonly tile: number } // tile x tile outputs per workgroup of 16 x 16
  | { readonly kind: "rows"; readonly rows: WgslExtent }; // one workgroup per row

export interface WgslKernelText {
  readonly code: string;
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
