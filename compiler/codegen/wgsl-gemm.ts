import type { Writer } from "./writer.js";

/**
 * The WGSL GEMMs: C[y, x] (+)= sum over r < R of A(y, r) * B(r, x), through workgroup memory in steps of
 * `kt` along r. Operands are read as `vec4<f32>` (the layout pads rows to 4 floats, so an aligned
 * operand's rows start on 16 bytes) along whichever of their axes is contiguous; each invocation keeps a
 * register tile of `ry` rows by 4 columns for each of `gates` column blocks, as vec4s.
 *
 * A fused GEMM (`gates` > 1, or an epilogue) computes, for a tile of rows and of `tx` hidden units, the
 * columns `g * units + u` of every gate g: it reads those rows of the packed weight, so that every gate of
 * a unit ends in the registers of one invocation and the cell's update runs there (the epilogue).
 *
 * Entry points that use these read and write the arenas as `mem4` / `pmem4` (the same bindings declared as
 * `array<vec4<f32>>`): a scalar is `mem4[i >> 2u][i & 3u]`.
 */
export interface GemmTiles {
  /** Rows and columns (units, per gate block) of a workgroup's tile. */
  readonly ty: number;
  readonly tx: number;
  /** Rows per invocation (1, 2 or 4); columns per invocation are 4 (one vec4) per gate block. */
  readonly ry: number;
  /** Step along the inner dimension. */
  readonly kt: number;
  /** Column blocks (gates) per tile. */
  readonly gates: number;
}

/** Invocations of a workgroup along x and y. */
export const threadsOf = (t: GemmTiles): [number, number] => [t.tx / 4, t.ty / t.ry];
/** Floats of workgroup memory the two tiles take. */
export const tileFloats = (t: GemmTiles): [number, number] => [t.kt * t.ty, t.kt * t.tx * t.gates];

/**
 * An operand: element (o, r), o its outer index (a row of A, a column of B), at `off + o * ld + r` when
 * contiguous along r, or `off + r * ld + o` when contiguous along o.
 */
export interface GemmOperand {
  readonly arena: string;
  readonly off: string;
  readonly ld: string;
  readonly contig: "r" | "o";
  /** Its rows start on 16 bytes (false: read as four scalars). */
  readonly aligned: boolean;
  /** Stored as float16 (`hmem`, `hpmem`: f16 storage), read and written as float32. */
  readonly half?: boolean;
}

export interface GemmSpec {
  readonly tiles: GemmTiles;
  /** Extents: columns (units, when fused), rows, inner. */
  readonly X: string;
  readonly Y: string;
  readonly R: string;
  readonly a: GemmOperand;
  readonly b: GemmOperand;
}

/** The helpers a module with GEMMs declares (after `mem4` and `pmem4`, and `hmem4` and `hpmem4` with f16). */
export function gemmHelpers(w: Writer, f16 = false): void {
  for (const arena of ["mem", "pmem"]) {
    w.line(`fn ${arena}_at(i: u32) -> f32 { return ${arena}4[i >> 2u][i & 3u]; }`);
    w.line(`fn ${arena}_set(i: u32, v: f32) { ${arena}4[i >> 2u][i & 3u] = v; }`);
    w.line(
      `fn ${arena}_v4(i: u32) -> vec4<f32> { return vec4<f32>(${arena}_at(i), ${arena}_at(i + 1u), ${arena}_at(i + 2u), ${arena}_at(i + 3u)); }`,
    );
  }
  if (!f16) return;
  for (const arena of ["hmem", "hpmem"]) {
    w.line(`fn ${arena}_at(i: u32) -> f32 { return f32(${arena}4[i >> 2u][i & 3u]); }`);
    w.line(`fn ${arena}_set(i: u32, v: f32) { ${arena}4[i >> 2u][i & 3u] = f16(v); }`);
    w.line(
      `fn ${arena}_v4(i: u32) -> vec4<f32> { return vec4<f32>(${arena}_at(i), ${arena}_at(i + 1u), ${arena}_at(i + 2u), ${arena}_at(i + 3u)); }`,
    );
  }
}

/** Four floats from `idx`, components c kept where `ok(c)` holds (else 0). */
function load4(o: GemmOperand, idx: string, ok: (c: number) => string): string {
  const raw = `${o.arena}4[${idx} >> 2u]`;
  const v = !o.aligned ? `${o.arena}_v4(${idx})` : o.half ? `vec4<f32>(${raw})` : raw;
  return `select(vec4<f32>(), ${v}, vec4<bool>(${[0, 1, 2, 3].map(ok).join(", ")}))`;
}
const plus = (base: string, c: number) => (c === 0 ? base : `${base} + ${c}u`);

/**
 * The body of a GEMM entry point (workgroup size `threadsOf(tiles)`, builtins `l` and `wg`): it leaves the
 * accumulators `c<i>_<g>` (rows y0 + l.y * ry + i, columns x0 + l.x * 4 .. + 3 of gate block g) for the
 * epilogue. `column(g, u)` is B's outer index of unit u of gate g (plain: u).
 */
export function gemmBody(w: Writer, s: GemmSpec, column: (g: string, u: string) => string): void {
  const { ty, tx, ry, kt, gates } = s.tiles;
  const [nx, ny] = threadsOf(s.tiles);
  const n = nx * ny;
  const C = tx * gates; // columns of B's tile
  w.line(`let x0 = wg.x * ${tx}u;`);
  w.line(`let y0 = wg.y * ${ty}u;`);
  w.line(`let lid = l.y * ${nx}u + l.x;`);
  for (let i = 0; i < ry; i++) for (let g = 0; g < gates; g++) w.line(`var c${i}_${g} = vec4<f32>();`);
  w.open(`for (var r0 = 0u; r0 < ${s.R}; r0 += ${kt}u) {`);
  // A's tile, k-major: tileA[k * ty / 4 + y / 4][y % 4].
  const a = s.a;
  if (a.contig === "r") {
    w.open(`for (var e = lid; e < ${(ty * kt) / 4}u; e += ${n}u) {`);
    w.line(`let yy = e / ${kt / 4}u;`);
    w.line(`let rq = e % ${kt / 4}u * 4u;`);
    w.line("let y = y0 + yy;");
    w.line("let r = r0 + rq;");
    w.line(
      `let v = ${load4(a, `(${a.off} + y * ${a.ld} + r)`, (c) => `y < ${s.Y} && ${plus("r", c)} < ${s.R}`)};`,
    );
    for (let c = 0; c < 4; c++) w.line(`tileA[(rq + ${c}u) * ${ty / 4}u + yy / 4u][yy % 4u] = v[${c}];`);
  } else {
    w.open(`for (var e = lid; e < ${(ty * kt) / 4}u; e += ${n}u) {`);
    w.line(`let rr = e / ${ty / 4}u;`);
    w.line(`let yq = e % ${ty / 4}u * 4u;`);
    w.line("let r = r0 + rr;");
    w.line("let y = y0 + yq;");
    w.line(
      `tileA[e] = ${load4(a, `(${a.off} + r * ${a.ld} + y)`, (c) => `r < ${s.R} && ${plus("y", c)} < ${s.Y}`)};`,
    );
  }
  w.close();
  // B's tile, k-major: tileB[k * C / 4 + c / 4][c % 4], column c = g * tx + u.
  const b = s.b;
  if (b.contig === "r") {
    w.open(`for (var e = lid; e < ${(C * kt) / 4}u; e += ${n}u) {`);
    w.line(`let cc = e / ${kt / 4}u;`);
    w.line(`let rq = e % ${kt / 4}u * 4u;`);
    w.line(`let u = x0 + cc % ${tx}u;`);
    w.line("let r = r0 + rq;");
    const col = gates > 1 ? column(`(cc / ${tx}u)`, "u") : "u";
    w.line(
      `let v = ${load4(b, `(${b.off} + (${col}) * ${b.ld} + r)`, (c) => `u < ${s.X} && ${plus("r", c)} < ${s.R}`)};`,
    );
    for (let c = 0; c < 4; c++) w.line(`tileB[(rq + ${c}u) * ${C / 4}u + cc / 4u][cc % 4u] = v[${c}];`);
  } else {
    if (gates > 1) throw new Error("cellc bug: a gated GEMM reads its weight along the inner dimension");
    w.open(`for (var e = lid; e < ${(C * kt) / 4}u; e += ${n}u) {`);
    w.line(`let rr = e / ${C / 4}u;`);
    w.line(`let xq = e % ${C / 4}u * 4u;`);
    w.line("let r = r0 + rr;");
    w.line("let x = x0 + xq;");
    w.line(
      `tileB[e] = ${load4(b, `(${b.off} + r * ${b.ld} + x)`, (c) => `r < ${s.R} && ${plus("x", c)} < ${s.X}`)};`,
    );
  }
  w.close();
  w.line("workgroupBarrier();");
  w.open(`for (var k = 0u; k < ${kt}u; k++) {`);
  w.line(`let a = tileA[k * ${ty / 4}u + l.y * ${ry}u / 4u];`);
  const row = (i: number) => (ry === 4 ? `a[${i}]` : ry === 2 ? `a[l.y % 2u * 2u + ${i}u]` : "a[l.y % 4u]");
  for (let g = 0; g < gates; g++) w.line(`let b${g} = tileB[k * ${C / 4}u + ${(g * tx) / 4}u + l.x];`);
  for (let i = 0; i < ry; i++) for (let g = 0; g < gates; g++) w.line(`c${i}_${g} += ${row(i)} * b${g};`);
  w.close();
  w.line("workgroupBarrier();");
  w.close();
}

/** The epilogue of a plain GEMM: C[y, x] (+)= the accumulators, as vec4s where C is aligned and whole. */
export function gemmStore(w: Writer, s: GemmSpec, out: GemmOperand, accumulate: boolean): void {
  const { ry } = s.tiles;
  w.line("let x = x0 + l.x * 4u;");
  for (let i = 0; i < ry; i++) {
    w.open(`if (y0 + l.y * ${ry}u + ${i}u < ${s.Y}) {`);
    w.line(`let o = ${out.off} + (y0 + l.y * ${ry}u + ${i}u) * ${out.ld} + x;`);
    const scalars = () => {
      for (let q = 0; q < 4; q++) {
        const at = plus("o", q);
        const v = accumulate ? `${out.arena}_at(${at}) + c${i}_0[${q}]` : `c${i}_0[${q}]`;
        w.line(`if (${plus("x", q)} < ${s.X}) { ${out.arena}_set(${at}, ${v}); }`);
      }
    };
    if (out.aligned) {
      const at = `${out.arena}4[o >> 2u]`;
      const v = `${accumulate ? `${out.half ? `vec4<f32>(${at})` : at} + ` : ""}c${i}_0`;
      w.line(`if (x + 3u < ${s.X}) { ${at} = ${out.half ? `vec4<f16>(${v})` : v}; }`);
      w.open("else {");
      scalars();
      w.close();
    } else scalars();
    w.close();
  }
}
