import { CellcError, sizeOf, type DType, type Tensor } from "./tensor.js";

/**
 * The safetensors format: an 8-byte little-endian header length N, N bytes of JSON mapping each tensor's
 * name to {dtype, shape, data_offsets: [begin, end]} (offsets into the data that follows), then the data,
 * little-endian. `__metadata__` holds string pairs. As the format's reference reader does, cellc requires
 * the tensors to cover the data exactly, without holes or overlaps, and caps the header at 100 MB.
 * F16 and BF16 are widened to f32 exactly; I64 is narrowed to i32 when every value fits.
 */
const DTYPES: Record<string, { dtype: DType; bytes: number }> = {
  F32: { dtype: "f32", bytes: 4 },
  F64: { dtype: "f64", bytes: 8 },
  I32: { dtype: "i32", bytes: 4 },
  F16: { dtype: "f32", bytes: 2 },
  BF16: { dtype: "f32", bytes: 2 },
  I64: { dtype: "i32", bytes: 8 },
};
const NAMES: Record<DType, string> = { f32: "F32", f64: "F64", i32: "I32" };
const MAX_HEADER = 100_000_000;

/** IEEE binary16 bits to a number: exact, with subnormals, infinities and NaN. */
export function f16ToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 31) return m ? NaN : sign * Infinity;
  return sign * (1024 + m) * 2 ** (e - 25);
}

/** bfloat16 bits are the top half of a float32's. */
function bf16ToNumber(view: DataView, at: number, scratch: DataView): number {
  scratch.setUint32(0, view.getUint16(at, true) << 16, true);
  return scratch.getFloat32(0, true);
}

export interface SafetensorsFile {
  readonly tensors: Map<string, Tensor>;
  readonly metadata: Map<string, string>;
}

export function readSafetensors(bytes: Uint8Array, what = "safetensors file"): Map<string, Tensor> {
  return readSafetensorsFile(bytes, what).tensors;
}

export function readSafetensorsFile(bytes: Uint8Array, what = "safetensors file"): SafetensorsFile {
  const fail = (why: string): never => {
    throw new CellcError(`${what} is not a valid safetensors file: ${why}`);
  };
  if (bytes.length < 8) fail(`it has ${bytes.length} bytes, fewer than the 8-byte header length`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = view.getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER)) fail(`the header length ${n} is over the limit of ${MAX_HEADER} bytes`);
  if (n > BigInt(bytes.length - 8))
    fail(`the header length ${n} runs past the end of the file (${bytes.length} bytes)`);
  const headerEnd = 8 + Number(n);
  let text = "";
  let header: unknown;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, headerEnd));
    header = JSON.parse(text);
  } catch {
    fail("the header is not valid UTF-8 JSON");
  }
  if (typeof header !== "object" || header === null || Array.isArray(header))
    fail("the header is not a JSON object");
  const dup = duplicateKey(text);
  if (dup !== undefined) fail(`the header names '${dup}' twice`);
  const dataLen = bytes.length - headerEnd;
  const metadata = new Map<string, string>();
  const spans: { name: string; begin: number; end: number }[] = [];
  const tensors = new Map<string, Tensor>();
  const scratch = new DataView(new ArrayBuffer(4));
  for (const [name, entry] of Object.entries(header as Record<string, unknown>)) {
    if (name === "__metadata__") {
      if (typeof entry !== "object" || entry === null || Array.isArray(entry))
        fail("__metadata__ is not an object of strings");
      for (const [k, v] of Object.entries(entry as Record<string, unknown>)) {
        if (typeof v !== "string") fail(`__metadata__ '${k}' is not a string`);
        metadata.set(k, v as string);
      }
      continue;
    }
    const tname = `tensor '${name}'`;
    if (typeof entry !== "object" || entry === null || Array.isArray(entry))
      fail(`${tname} is ${JSON.stringify(entry)}, not an object with dtype, shape and data_offsets`);
    const e = entry as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    const dt = typeof e.dtype === "string" && Object.hasOwn(DTYPES, e.dtype) ? DTYPES[e.dtype] : undefined;
    if (!dt)
      fail(`${tname} has dtype ${JSON.stringify(e.dtype)}; supported: ${Object.keys(DTYPES).join(", ")}`);
    const stored = e.dtype as string;
    const shape = e.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0))
      fail(`${tname} has shape ${JSON.stringify(shape)}; expected a list of non-negative integers`);
    const off = e.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || !off.every((o) => Number.isSafeInteger(o) && o >= 0))
      fail(`${tname} has data_offsets ${JSON.stringify(off)}; expected [begin, end]`);
    const [begin, end] = off as [number, number];
    const count = sizeOf(shape as number[]);
    if (end < begin || end > dataLen)
      fail(`${tname} has data_offsets [${begin}, ${end}] outside the ${dataLen} data bytes`);
    if (end - begin !== count * dt!.bytes)
      fail(
        `${tname} (${stored}) of shape [${(shape as number[]).join(", ")}] needs ${count * dt!.bytes} bytes, has ${end - begin}`,
      );
    spans.push({ name, begin, end });
    const src = new DataView(bytes.buffer, bytes.byteOffset + headerEnd + begin, end - begin);
    const data =
      dt!.dtype === "f64"
        ? new Float64Array(count)
        : dt!.dtype === "f32"
          ? new Float32Array(count)
          : new Int32Array(count);
    for (let i = 0; i < count; i++) {
      if (stored === "I64") {
        const v = src.getBigInt64(i * 8, true);
        if (v < -(2n ** 31n) || v >= 2n ** 31n)
          fail(`${tname} (I64) holds ${v} at index ${i}, outside the int32 range cellc reads I64 into`);
        data[i] = Number(v);
      } else
        data[i] =
          stored === "F32"
            ? src.getFloat32(i * 4, true)
            : stored === "F64"
              ? src.getFloat64(i * 8, true)
              : stored === "I32"
                ? src.getInt32(i * 4, true)
                : stored === "F16"
                  ? f16ToNumber(src.getUint16(i * 2, true))
                  : bf16ToNumber(src, i * 2, scratch);
    }
    const t: Tensor = { dtype: dt!.dtype, shape: shape as number[], data };
    tensors.set(name, dt!.bytes === 4 ? t : { ...t, stored });
  }
  // The data must be exactly covered: sorted by offset, each tensor starts where the previous ends.
  spans.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let at = 0;
  let prev: (typeof spans)[number] | undefined;
  for (const s of spans) {
    if (s.begin < at)
      fail(
        `tensors '${prev!.name}' [${prev!.begin}, ${prev!.end}] and '${s.name}' [${s.begin}, ${s.end}] overlap`,
      );
    if (s.begin > at) fail(`data bytes [${at}, ${s.begin}) belong to no tensor (before '${s.name}')`);
    at = s.end;
    prev = s;
  }
  if (at !== dataLen) fail(`data bytes [${at}, ${dataLen}) at the end belong to no tensor`);
  return { tensors, metadata };
}

/** The first key that a JSON object's text (already parsed, so valid) repeats at its top level. */
function duplicateKey(text: string): string | undefined {
  const seen = new Set<string>();
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x7b || c === 0x5b) depth++;
    else if (c === 0x7d || c === 0x5d) depth--;
    else if (c === 0x22) {
      let j = i + 1;
      while (text.charCodeAt(j) !== 0x22) j += text.charCodeAt(j) === 0x5c ? 2 : 1;
      if (depth === 1) {
        let k = j + 1;
        while (" \t\r\n".includes(text[k]!)) k++;
        if (text[k] === ":") {
          const key = JSON.parse(text.slice(i, j + 1)) as string;
          if (seen.has(key)) return key;
          seen.add(key);
        }
      }
      i = j;
    }
  }
  return undefined;
}

export function writeSafetensors(
  tensors: ReadonlyMap<string, Tensor> | Record<string, Tensor>,
  metadata?: ReadonlyMap<string, string>,
): Uint8Array {
  const entries: [string, Tensor][] =
    tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
  entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const header: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  if (metadata?.size) header.__metadata__ = Object.fromEntries(metadata);
  let offset = 0;
  for (const [name, t] of entries) {
    if (name === "__metadata__")
      throw new CellcError(
        "a tensor cannot be named __metadata__ in a safetensors file: the format reserves it",
      );
    const bytes = t.data.length * (t.dtype === "f64" ? 8 : 4);
    header[name] = { dtype: NAMES[t.dtype], shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const head = new Uint8Array(Math.ceil(json.length / 8) * 8).fill(0x20); // spaces align the data to 8 bytes
  head.set(json);
  const out = new Uint8Array(8 + head.length + offset);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(head.length), true);
  out.set(head, 8);
  let p = 8 + head.length;
  for (const [, t] of entries) {
    for (let i = 0; i < t.data.length; i++) {
      if (t.dtype === "f32") view.setFloat32(p, t.data[i]!, true);
      else if (t.dtype === "f64") view.setFloat64(p, t.data[i]!, true);
      else view.setInt32(p, t.data[i]!, true);
      p += t.dtype === "f64" ? 8 : 4;
    }
  }
  return out;
}
