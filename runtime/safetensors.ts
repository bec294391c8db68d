import { CellcError, sizeOf, type DType, type Tensor } from "./tensor.js";

/**
 * The safetensors format: an 8-byte little-endian header length N, N bytes of JSON mapping each tensor's
 * name to {dtype, shape, data_offsets: [begin, end]} (offsets into the data that follows), then the data,
 * little-endian. `__metadata__` holds string pairs. Written here in full: it is a few dozen lines.
 */
const DTYPES: Record<string, { dtype: DType; bytes: number }> = {
  F32: { dtype: "f32", bytes: 4 },
  F64: { dtype: "f64", bytes: 8 },
  I32: { dtype: "i32", bytes: 4 },
};
const NAMES: Record<DType, string> = { f32: "F32", f64: "F64", i32: "I32" };

export function readSafetensors(bytes: Uint8Array, what = "safetensors file"): Map<string, Tensor> {
  const fail = (why: string): never => {
    throw new CellcError(`${what} is not a valid safetensors file: ${why}`);
  };
  if (bytes.length < 8) fail(`it has ${bytes.length} bytes, fewer than the 8-byte header length`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = view.getBigUint64(0, true);
  if (n > BigInt(bytes.length - 8))
    fail(`the header length ${n} runs past the end of the file (${bytes.length} bytes)`);
  const headerEnd = 8 + Number(n);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, headerEnd)));
  } catch {
    fail("the header is not valid UTF-8 JSON");
  }
  if (typeof header !== "object" || header === null || Array.isArray(header))
    fail("the header is not a JSON object");
  const dataLen = bytes.length - headerEnd;
  const out = new Map<string, Tensor>();
  for (const [name, entry] of Object.entries(header as Record<string, unknown>)) {
    if (name === "__metadata__") continue;
    const e = entry as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    const dt = typeof e.dtype === "string" ? DTYPES[e.dtype] : undefined;
    if (!dt) fail(`tensor '${name}' has dtype ${JSON.stringify(e.dtype)}; supported: F32, F64, I32`);
    const shape = e.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0))
      fail(`tensor '${name}' has an invalid shape`);
    const off = e.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || !off.every((o) => Number.isInteger(o) && o >= 0))
      fail(`tensor '${name}' has invalid data_offsets`);
    const [begin, end] = off as [number, number];
    const count = sizeOf(shape as number[]);
    if (end < begin || end > dataLen)
      fail(`tensor '${name}' has data_offsets [${begin}, ${end}] outside the ${dataLen} data bytes`);
    if (end - begin !== count * dt!.bytes)
      fail(
        `tensor '${name}' of shape [${(shape as number[]).join(", ")}] needs ${count * dt!.bytes} bytes, has ${end - begin}`,
      );
    const src = new DataView(bytes.buffer, bytes.byteOffset + headerEnd + begin, end - begin);
    const data =
      dt!.dtype === "f32"
        ? new Float32Array(count)
        : dt!.dtype === "f64"
          ? new Float64Array(count)
          : new Int32Array(count);
    for (let i = 0; i < count; i++)
      data[i] =
        dt!.dtype === "f32"
          ? src.getFloat32(i * 4, true)
          : dt!.dtype === "f64"
            ? src.getFloat64(i * 8, true)
            : src.getInt32(i * 4, true);
    out.set(name, { dtype: dt!.dtype, shape: shape as number[], data });
  }
  return out;
}

export function writeSafetensors(tensors: ReadonlyMap<string, Tensor> | Record<string, Tensor>): Uint8Array {
  const entries: [string, Tensor][] =
    tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
  entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const [name, t] of entries) {
    const bytes = t.data.length * (t.dtype === "f64" ? 8 : 4);
    header[name] = { dtype: NAMES[t.dtype], shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  while ((json.length + 8) % 8 !== 0) json += " "; // align the data to 8 bytes
  const head = new TextEncoder().encode(json);
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
