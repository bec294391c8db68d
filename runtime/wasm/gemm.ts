// The three GEMM forms of compiler/wasm/kernels.ts run on a pool: the packing divided by panels, then the
// product divided by rows (micro-tile multiples) or by columns (panel multiples), whichever gives more
// even slices. Every division gives results bit-identical to the single-threaded call.
import type { GemmTiling } from "../../kernels/gemm.js";
import type { Pool } from "./pool.js";

export type GemmForm = "nt" | "nn" | "tn";
type Mode = "rows" | "cols" | "packed";

/** A division of a call (pool.ts's Split), rewritten from call to call. */
interface Division {
  count: number;
  align: number;
  readonly shifts: [number, number][];
}

/**
 * A pool's GEMM exports, resolved once, and the divisions of a product reused from call to call: a GEMM at
 * every step looks nothing up by name and allocates nothing.
 */
export interface PoolGemm {
  readonly pool: Pool;
  readonly tiling: GemmTiling;
  readonly fn: Readonly<Record<"pack_t" | "pack_n" | "pack_a" | `mm_${Mode}`, number>>;
  readonly byRows: Division;
  readonly byCols: Division;
  /** pack_a's inner steps, by whole blocks of kc. */
  readonly byBlocks: Division;
}

export function poolGemm(pool: Pool, tiling: GemmTiling): PoolGemm {
  const names = ["pack_t", "pack_n", "pack_a", "mm_rows", "mm_cols", "mm_packed"] as const;
  const fn = Object.fromEntries(names.map((n) => [n, pool.indexOf(n)])) as PoolGemm["fn"];
  return {
    pool,
    tiling,
    fn,
    byRows: {
      count: 5,
      align: tiling.mr,
      shifts: [
        [0, 0],
        [2, 0],
      ],
    },
    byCols: {
      count: 6,
      align: tiling.nr,
      shifts: [
        [0, 4],
        [4, 0],
      ],
    },
    byBlocks: {
      count: 3,
      align: tiling.kc,
      shifts: [
        [0, 0],
        [1, 0],
      ],
    },
  };
}

/**
 * Same arguments as the module's gemm_<form>: (C, ldc, L, ldl, Rt, ldr, R, M, K, acc, scratch), with
 * C/L/Rt = C/A/P (nt), C/G/P (nn), D/G/X (tn). `by` forces the division of the product (for tests).
 */
export function gemm(g: PoolGemm, form: GemmForm, args: readonly number[], by?: "rows" | "cols"): void {
  const [C, ldc, L, ldl, Rt, ldr, R, M, K, acc, scratch] = args as [number, number, number, number, number, number, number, number, number, number, number]; // prettier-ignore
  const { pool, tiling } = g;
  // The product's rows, columns and inner extent, as mm_rows / mm_cols see them.
  const [rows, cols, inner] = form === "nt" ? [R, M, K] : form === "nn" ? [R, K, M] : [M, K, R];
  if (form === "nt") pool.runAt(g.fn.pack_t, [scratch, Rt, ldr, M, K], panels(tiling.nr, 3, K, ldr * 4));
  else pool.runAt(g.fn.pack_n, [scratch, Rt, ldr, inner, cols], panels(tiling.nr, 4, inner, 4));
  if (form !== "tn") {
    mm(g, "rows", [C, ldc, L, ldl, scratch, rows, cols, inner, acc], by);
    return;
  }
  // As the module's gemm_tn: G into blocks of mr-wide panels after X's (divided by whole blocks of kc
  // inner steps), then mm_packed.
  const gAt = scratch + Math.ceil(K / tiling.nr) * tiling.nr * R * 4;
  const colsP = Math.ceil(M / tiling.mr) * tiling.mr;
  g.byBlocks.shifts[0]![1] = colsP * 4;
  g.byBlocks.shifts[1]![1] = ldl * 4;
  pool.runAt(g.fn.pack_a, [gAt, L, ldl, R, M], g.byBlocks);
  mm(g, "packed", [C, ldc, gAt, colsP, scratch, M, K, R, acc], by);
}

/** Division of a packer's columns: whole panels, destination and source advanced per column. */
function panels(width: number, count: number, inner: number, srcBytes: number): Division {
  return {
    count,
    align: width,
    shifts: [
      [0, inner * 4],
      [1, srcBytes],
    ],
  };
}

/** mm_rows / mm_cols / mm_packed on packed panels: (C, ldc, A, lda, B, rows, cols, inner, acc). */
export function mm(g: PoolGemm, mode: Mode, args: readonly number[], by?: "rows" | "cols"): void {
  const t = g.tiling;
  const [ldc, lda, rows, cols, inner] = [args[1]!, args[3]!, args[5]!, args[6]!, args[7]!];
  const rowUnits = Math.ceil(rows / t.mr);
  const colUnits = Math.ceil(cols / t.nr);
  const split = by ?? (rowUnits >= colUnits || rowUnits >= 8 * g.pool.threads ? "rows" : "cols");
  const fn = mode === "rows" ? g.fn.mm_rows : mode === "cols" ? g.fn.mm_cols : g.fn.mm_packed;
  if (split === "rows") {
    // C and A advance by whole rows.
    g.byRows.shifts[0]![1] = ldc * 4;
    g.byRows.shifts[1]![1] = mode === "rows" ? lda * 4 : mode === "cols" ? 4 : t.kc * 4;
    g.pool.runAt(fn, args, g.byRows);
  } else {
    // C by columns, the panels by whole panels.
    g.byCols.shifts[1]![1] = inner * 4;
    g.pool.runAt(fn, args, g.byCols);
  }
}
