// The three GEMM forms of compiler/wasm/kernels.ts run on a pool: the packing divided by panels, then the
// product divided by rows (micro-tile multiples) or by columns (panel multiples), whichever gives more
// even slices. Every division gives results bit-identical to the single-threaded call.
import type { GemmTiling } from "../../compiler/wasm/gemm.js";
import type { Pool } from "./pool.js";

export type GemmForm = "nt" | "nn" | "tn";

/**
 * Same arguments as the module's gemm_<form>: (C, ldc, L, ldl, Rt, ldr, R, M, K, acc, scratch), with
 * C/L/Rt = C/A/P (nt), C/G/P (nn), D/G/X (tn). `by` forces the division of the product (for tests).
 */
export function gemm(
  pool: Pool,
  tiling: GemmTiling,
  form: GemmForm,
  args: readonly number[],
  by?: "rows" | "cols",
): void {
  const [C, ldc, L, ldl, Rt, ldr, R, M, K, acc, scratch] = args as [number, number, number, number, number, number, number, number, number, number, number]; // prettier-ignore
  // The product's rows, columns and inner extent, as mm_rows / mm_cols see them.
  const [rows, cols, inner] = { nt: [R, M, K], nn: [R, K, M], tn: [M, K, R] }[form] as [
    number,
    number,
    number,
  ];
  if (form === "nt") pool.run("pack_t", [scratch, Rt, ldr, M, K], panels(tiling.nr, 3, K, ldr * 4));
  else pool.run("pack_n", [scratch, Rt, ldr, inner, cols], panels(tiling.nr, 4, inner, 4));
  if (form !== "tn") {
    mm(pool, tiling, "rows", [C, ldc, L, ldl, scratch, rows, cols, inner, acc], by);
    return;
  }
  // As the module's gemm_tn: G into mr-wide panels after X's, then mm_packed.
  const gAt = scratch + Math.ceil(K / tiling.nr) * tiling.nr * R * 4;
  pool.run("pack_a", [gAt, L, ldl, R, M], panels(tiling.mr, 4, R, 4));
  mm(pool, tiling, "packed", [C, ldc, gAt, 0, scratch, M, K, R, acc], by);
}

/** Division of a packer's columns: whole panels, destination and source advanced per column. */
function panels(width: number, count: number, inner: number, srcBytes: number) {
  return { count, align: width, shifts: [[0, inner * 4] as const, [1, srcBytes] as const] };
}

/** mm_rows / mm_cols / mm_packed on packed panels: (C, ldc, A, lda, B, rows, cols, inner, acc). */
export function mm(
  pool: Pool,
  t: GemmTiling,
  mode: "rows" | "cols" | "packed",
  args: readonly number[],
  by?: "rows" | "cols",
): void {
  const [, ldc, , lda, , rows, cols, inner] = args as number[];
  const rowUnits = Math.ceil(rows! / t.mr);
  const colUnits = Math.ceil(cols! / t.nr);
  const split = by ?? (rowUnits >= colUnits || rowUnits >= 8 * pool.threads ? "rows" : "cols");
  const name = `mm_${mode}`;
  if (split === "rows") {
    const aBytes = { rows: lda! * 4, cols: 4, packed: inner! * 4 }[mode];
    pool.run(name, args, {
      count: 5,
      align: t.mr,
      shifts: [
        [0, ldc! * 4],
        [2, aBytes],
      ],
    });
  } else {
    pool.run(name, args, {
      count: 6,
      align: t.nr,
      shifts: [
        [0, 4],
        [4, inner! * 4],
      ],
    });
  }
}
