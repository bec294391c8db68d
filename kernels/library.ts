// The core kernel module of the wasm backend: GEMMs and vector math over one imported shared memory.
//
// Interface (every pointer is a byte offset into the memory, every ld/count an element count, all i32):
//   gemm_nt(C, ldc, A, lda, P, ldp, R, M, K, acc, scratch)   C[R,M] (+)= A[R,K] · P[M,K]^T
//   gemm_nn(C, ldc, G, ldg, P, ldp, R, M, K, acc, scratch)   C[R,K] (+)= G[R,M] · P[M,K]
//   gemm_tn(D, ldd, G, ldg, X, ldx, R, M, K, acc, scratch)   D[M,K] (+)= G[R,M]^T · X[R,K]
//     acc = 0 overwrites, 1 adds; nothing outside the [rows, width] of C/D is written. Each packs its
//     right operand into `scratch` (gemm_tn also G, after it; scratchBytes(tiling, form, R, M, K) bytes)
//     and runs mm_rows / mm_packed on the panels. A schedule packs weights once per update instead:
//   pack_t(dst, src, ld, cols, inner)   src [cols, inner] -> panels of nr columns (P of gemm_nt)
//   pack_n(dst, src, ld, inner, cols)   src [inner, cols] -> panels of nr columns (P of gemm_nn, X of tn)
//   pack_a(dst, src, ld, inner, cols)   mr-wide panels, block by block of kc inner steps (G of gemm_tn)
//     Panel p holds columns [p*w, p*w + w) for every inner step k at dst + (p*w*inner + k*w)*4, zero padded;
//     pack_a's at dst + (b*kc*colsP + p*w*kc + (k - b*kc)*w)*4 for k in block b (colsP: cols rounded up to w).
//   mm_rows(C, ldc, A, lda, B, rows, cols, inner, acc)      C (+)= A[rows, inner] · panels B
//   mm_cols(C, ldc, A, lda, B, rows, cols, inner, acc)      C (+)= A[inner, rows]^T · panels B
//   mm_packed(C, ldc, A, colsP, B, rows, cols, inner, acc)  C (+)= pack_a blocks A (^T) · panels B
//   vexp / vlog / vtanh / vsigmoid(dst, src, n)             elementwise over n floats (dst may equal src)
//   scan(D, P, A, ld, T, n)                                 a linear scan over time (scan.ts)
// Alignment: 4 bytes is enough for correctness everywhere; 16-byte aligned scratch and rows are faster.
// Results are deterministic: splitting mm_* by rows (multiples of tiling.mr) or by columns (multiples of
// tiling.nr), and the packers by panels, gives bit-identical output; runtime/wasm/gemm.ts divides them so.
import { addGemm, DEFAULT_TILING, type GemmTiling } from "./gemm.js";
import { addMath } from "./math.js";
import { addScan } from "./scan.js";
import { ModuleWriter } from "./writer.js";

export const MEMORY_IMPORT = { module: "env", field: "memory" } as const;

export interface KernelModule {
  bytes: Uint8Array<ArrayBuffer>;
  tiling: GemmTiling;
}

export function buildKernelModule(tiling: GemmTiling = DEFAULT_TILING): KernelModule {
  const m = new ModuleWriter({ ...MEMORY_IMPORT, initial: 1, maximum: 65536, shared: true });
  addGemm(m, tiling);
  addMath(m, { fma: tiling.fma === true });
  addScan(m);
  return { bytes: m.encode(), tiling };
}
