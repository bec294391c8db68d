// A WebAssembly binary module writer: just the sections, instructions and SIMD128 opcodes that cellc's
// kernels need. Our own rather than binaryen (~10 MB) or wabt (~1 MB of Emscripten output) because the
// compiler must run in a browser page and stay small; this file is the whole of it. Layout and opcode
// numbers follow the WebAssembly core specification 2.0 (binary format, chapter 5) and its SIMD proposal.

export const T = { i32: 0x7f, i64: 0x7e, f32: 0x7d, f64: 0x7c, v128: 0x7b } as const;
export type ValType = (typeof T)[keyof typeof T];

/** Unsigned LEB128 of an integer in [0, 2^32). */
export function uleb(n: number): number[] {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new RangeError(`uleb: ${n} is not a u32`);
  const out: number[] = [];
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}

/** Signed LEB128 of an integer in [-2^31, 2^31) (i32.const immediates). */
export function sleb(n: number): number[] {
  if (!Number.isInteger(n) || n < -0x80000000 || n > 0x7fffffff)
    throw new RangeError(`sleb: ${n} is not an i32`);
  const out: number[] = [];
  for (;;) {
    const byte = n & 0x7f;
    n >>= 7;
    const done = (n === 0 && (byte & 0x40) === 0) || (n === -1 && (byte & 0x40) !== 0);
    out.push(done ? byte : byte | 0x80);
    if (done) return out;
  }
}

const utf8 = (s: string): number[] => [...new TextEncoder().encode(s)];
const name = (s: string): number[] => [...uleb(utf8(s).length), ...utf8(s)];
const vec = (items: number[][]): number[] => [...uleb(items.length), ...items.flat()];

// Plain (one-byte) opcodes used by the kernels.
const OP = {
  unreachable: 0x00, nop: 0x01, return: 0x0f, drop: 0x1a, select: 0x1b,
  "i32.eqz": 0x45, "i32.eq": 0x46, "i32.ne": 0x47, "i32.lt_s": 0x48, "i32.lt_u": 0x49, "i32.gt_s": 0x4a,
  "i32.gt_u": 0x4b, "i32.le_s": 0x4c, "i32.le_u": 0x4d, "i32.ge_s": 0x4e, "i32.ge_u": 0x4f,
  "i32.add": 0x6a, "i32.sub": 0x6b, "i32.mul": 0x6c, "i32.div_s": 0x6d, "i32.div_u": 0x6e, "i32.rem_u": 0x70, "i32.and": 0x71,
  "i32.or": 0x72, "i32.xor": 0x73, "i32.shl": 0x74, "i32.shr_s": 0x75, "i32.shr_u": 0x76,
  "f32.add": 0x92, "f32.sub": 0x93, "f32.mul": 0x94, "f32.div": 0x95, "f32.min": 0x96, "f32.max": 0x97,
} as const; // prettier-ignore

// SIMD128 opcodes (prefix 0xfd, then the number as a u32 LEB128).
const SIMD = {
  "v128.not": 0x4d, "v128.and": 0x4e, "v128.andnot": 0x4f, "v128.or": 0x50, "v128.xor": 0x51,
  "v128.bitselect": 0x52, "v128.any_true": 0x53,
  "i32x4.splat": 0x11, "f32x4.splat": 0x13,
  "i32x4.eq": 0x37, "i32x4.ne": 0x38, "i32x4.lt_s": 0x39, "i32x4.gt_s": 0x3b, "i32x4.le_s": 0x3d,
  "i32x4.ge_s": 0x3f,
  "f32x4.eq": 0x41, "f32x4.ne": 0x42, "f32x4.lt": 0x43, "f32x4.gt": 0x44, "f32x4.le": 0x45, "f32x4.ge": 0x46,
  "f32x4.ceil": 0x67, "f32x4.floor": 0x68, "f32x4.trunc": 0x69, "f32x4.nearest": 0x6a,
  "i32x4.shl": 0xab, "i32x4.shr_s": 0xac, "i32x4.shr_u": 0xad, "i32x4.add": 0xae, "i32x4.sub": 0xb1,
  "i32x4.mul": 0xb5, "i32x4.min_s": 0xb6, "i32x4.max_s": 0xb8,
  "f32x4.abs": 0xe0, "f32x4.neg": 0xe1, "f32x4.sqrt": 0xe3, "f32x4.add": 0xe4, "f32x4.sub": 0xe5,
  "f32x4.mul": 0xe6, "f32x4.div": 0xe7, "f32x4.min": 0xe8, "f32x4.max": 0xe9, "f32x4.pmin": 0xea,
  "f32x4.pmax": 0xeb,
  "i32x4.trunc_sat_f32x4_s": 0xf8, "f32x4.convert_i32x4_s": 0xfa,
  // Relaxed SIMD: a * b + c and -(a * b) + c, fused or not as the hardware has it (validated only where
  // the engine has it).
  "f32x4.relaxed_madd": 0x105, "f32x4.relaxed_nmadd": 0x106,
} as const; // prettier-ignore

// Loads and stores: opcode, natural alignment (log2 bytes).
const MEM = {
  "i32.load": [[0x28], 2], "f32.load": [[0x2a], 2], "i32.store": [[0x36], 2], "f32.store": [[0x38], 2],
  "v128.load": [[0xfd, 0x00], 4], "v128.load32_splat": [[0xfd, 0x09], 2], "v128.store": [[0xfd, 0x0b], 4],
} as const satisfies Record<string, readonly [readonly number[], number]>; // prettier-ignore

export type Op = keyof typeof OP | keyof typeof SIMD;
export type MemOp = keyof typeof MEM;
type BlockType = ValType | "void";

/** One function body: locals and instructions, appended with the methods below. */
export class Func {
  readonly code: number[] = [];
  private readonly locals: ValType[] = [];
  private depth = 0;

  constructor(
    readonly params: readonly ValType[],
    readonly results: readonly ValType[] = [],
  ) {}

  /** A new local of type t; returns its index (parameters come first). */
  local(t: ValType): number {
    this.locals.push(t);
    return this.params.length + this.locals.length - 1;
  }

  op(...names: Op[]): this {
    for (const n of names) {
      if (n in OP) this.code.push(OP[n as keyof typeof OP]);
      else this.code.push(0xfd, ...uleb(SIMD[n as keyof typeof SIMD]));
    }
    return this;
  }
  get(i: number): this {
    return this.emit(0x20, ...uleb(i));
  }
  set(i: number): this {
    return this.emit(0x21, ...uleb(i));
  }
  tee(i: number): this {
    return this.emit(0x22, ...uleb(i));
  }
  i32(n: number): this {
    return this.emit(0x41, ...sleb(n | 0));
  }
  f32(x: number): this {
    const b = new Uint8Array(new Float32Array([x]).buffer);
    return this.emit(0x43, ...b);
  }
  /** v128.const from four f32 lanes (or i32 lanes with `ints`). */
  v128(lanes: readonly number[], ints = false): this {
    const arr = ints ? new Int32Array(lanes) : new Float32Array(lanes);
    if (arr.length !== 4) throw new RangeError("v128 constant needs 4 lanes");
    return this.emit(0xfd, 0x0c, ...new Uint8Array(arr.buffer));
  }
  /** Memory access with a constant byte offset; alignment is the natural one unless given (log2 bytes). */
  mem(op: MemOp, offset = 0, alignLog2?: number): this {
    const [bytes, natural] = MEM[op];
    return this.emit(...bytes, ...uleb(alignLog2 ?? natural), ...uleb(offset));
  }
  lane(op: "f32x4.extract_lane" | "f32x4.replace_lane" | "i32x4.extract_lane", i: number): this {
    const code = { "f32x4.extract_lane": 0x1f, "f32x4.replace_lane": 0x20, "i32x4.extract_lane": 0x1b }[op];
    return this.emit(0xfd, ...uleb(code), i);
  }
  /** v128 reinterpreted as another lane type is free: the bits are shared, so no opcode is needed. */
  block(t: BlockType = "void"): this {
    this.depth++;
    return this.emit(0x02, t === "void" ? 0x40 : t);
  }
  loop(t: BlockType = "void"): this {
    this.depth++;
    return this.emit(0x03, t === "void" ? 0x40 : t);
  }
  if(t: BlockType = "void"): this {
    this.depth++;
    return this.emit(0x04, t === "void" ? 0x40 : t);
  }
  else(): this {
    return this.emit(0x05);
  }
  end(): this {
    this.depth--;
    return this.emit(0x0b);
  }
  br(label: number): this {
    return this.emit(0x0c, ...uleb(label));
  }
  brIf(label: number): this {
    return this.emit(0x0d, ...uleb(label));
  }
  call(index: number): this {
    return this.emit(0x10, ...uleb(index));
  }

  /** Where the next instruction goes: a position for `insert`. */
  get at(): number {
    return this.code.length;
  }
  /**
   * Instructions emitted by `build`, placed at an earlier position `at` (code known only after what follows
   * it, such as the addresses a loop body turned out to need). `build` must leave its blocks balanced.
   */
  insert(at: number, build: () => void): this {
    const end = this.code.length;
    build();
    const moved = this.code.splice(end);
    this.code.splice(at, 0, ...moved);
    return this;
  }

  /** The encoded body (locals grouped in runs of one type, instructions, final `end`). */
  encode(): number[] {
    if (this.depth !== 0) throw new Error(`function body has ${this.depth} unclosed block(s)`);
    const runs: number[][] = [];
    for (let i = 0; i < this.locals.length;) {
      let j = i;
      while (j < this.locals.length && this.locals[j] === this.locals[i]) j++;
      runs.push([...uleb(j - i), this.locals[i]!]);
      i = j;
    }
    const body = [...vec(runs), ...this.code, 0x0b];
    return [...uleb(body.length), ...body];
  }

  private emit(...bytes: number[]): this {
    for (const b of bytes) this.code.push(b);
    return this;
  }
}

export interface MemoryImport {
  module: string;
  field: string;
  /** Pages of 64 KiB. */
  initial: number;
  maximum: number;
  shared: boolean;
}

/** A module: one imported memory, functions, exports. Function indices are in order of `add`. */
export class ModuleWriter {
  private readonly funcs: Func[] = [];
  private readonly exports: [string, number][] = [];

  constructor(private readonly memory: MemoryImport) {}

  add(f: Func, exportName?: string): number {
    this.funcs.push(f);
    const index = this.funcs.length - 1;
    if (exportName !== undefined) this.exports.push([exportName, index]);
    return index;
  }

  encode(): Uint8Array<ArrayBuffer> {
    const types: string[] = [];
    const typeOf = this.funcs.map((f) => {
      const key = [f.params.join(","), f.results.join(",")].join(";");
      if (!types.includes(key)) types.push(key);
      return types.indexOf(key);
    });
    const typeSec = types.map((key) => {
      const [p, r] = key.split(";").map((s) => (s === "" ? [] : s.split(",").map(Number)));
      return [0x60, ...vec(p!.map((t) => [t])), ...vec(r!.map((t) => [t]))];
    });
    const m = this.memory;
    const limits = m.shared
      ? [0x03, ...uleb(m.initial), ...uleb(m.maximum)]
      : [0x01, ...uleb(m.initial), ...uleb(m.maximum)];
    const importSec = [[...name(m.module), ...name(m.field), 0x02, ...limits]];
    const exportSec = this.exports.map(([n, i]) => [...name(n), 0x00, ...uleb(i)]);
    const section = (id: number, items: number[][]): number[] => {
      const content = vec(items);
      return [id, ...uleb(content.length), ...content];
    };
    return new Uint8Array([
      0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
      ...section(1, typeSec),
      ...section(2, importSec),
      ...section(3, typeOf.map((t) => uleb(t))),
      ...section(7, exportSec),
      ...section(10, this.funcs.map((f) => f.encode())),
    ]); // prettier-ignore
  }
}
