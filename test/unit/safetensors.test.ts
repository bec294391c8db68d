import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { readSafetensors, readSafetensorsFile, writeSafetensors } from "../../runtime/safetensors.js";
import { CellcError, tensor } from "../../runtime/tensor.js";

/** A safetensors file from a header given as JSON text (so it can hold duplicates) and raw data bytes. */
function raw(header: string | object, data: Uint8Array | number[] = []): Uint8Array {
  const json = new TextEncoder().encode(typeof header === "string" ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

const u16 = (xs: number[]) => new Uint8Array(new Uint16Array(xs).buffer);
const read = (bytes: Uint8Array) => readSafetensors(bytes, "parameters 'p.safetensors'");

describe("safetensors: malformed files name the file and the tensor", () => {
  const f32 = (shape: number[], offsets: [number, number]) => ({
    dtype: "F32",
    shape,
    data_offsets: offsets,
  });
  const cases: [string, Uint8Array, RegExp][] = [
    ["a null entry", raw({ a: null }), /tensor 'a' is null, not an object/],
    ["an entry that is a number", raw({ a: 3 }), /tensor 'a' is 3, not an object/],
    ["an entry that is a list", raw({ a: [1] }), /tensor 'a' is \[1\], not an object/],
    [
      "a duplicate name",
      raw(
        `{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}, "w" :{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`,
        new Array(8).fill(0),
      ),
      /names 'w' twice/,
    ],
    [
      "overlapping ranges",
      raw({ a: f32([2], [0, 8]), b: f32([2], [4, 12]) }, new Array(12).fill(0)),
      /tensors 'a' \[0, 8\] and 'b' \[4, 12\] overlap/,
    ],
    [
      "a hole between tensors",
      raw({ a: f32([1], [0, 4]), b: f32([1], [8, 12]) }, new Array(12).fill(0)),
      /data bytes \[4, 8\) belong to no tensor \(before 'b'\)/,
    ],
    [
      "trailing bytes",
      raw({ a: f32([1], [0, 4]) }, new Array(8).fill(0)),
      /data bytes \[4, 8\) at the end belong to no tensor/,
    ],
    ["a negative dimension", raw({ a: f32([-1], [0, 0]) }), /tensor 'a' has shape \[-1\]/],
    [
      "a fractional dimension",
      raw({ a: f32([1.5], [0, 6]) }, new Array(6).fill(0)),
      /tensor 'a' has shape \[1.5\]/,
    ],
    [
      "a string dimension",
      raw({ a: f32(["2" as unknown as number], [0, 8]) }),
      /tensor 'a' has shape \["2"\]/,
    ],
    [
      "shape and size disagree",
      raw({ a: f32([3], [0, 8]) }, new Array(8).fill(0)),
      /tensor 'a' \(F32\) of shape \[3\] needs 12 bytes, has 8/,
    ],
    [
      "an unknown dtype",
      raw({ a: { dtype: "Q4", shape: [1], data_offsets: [0, 1] } }, [0]),
      /tensor 'a' has dtype "Q4"/,
    ],
    [
      "a dtype from Object.prototype",
      raw({ a: { dtype: "toString", shape: [], data_offsets: [0, 4] } }, [0, 0, 0, 0]),
      /dtype "toString"/,
    ],
    ["invalid JSON", raw("{not json}"), /the header is not valid UTF-8 JSON/],
    ["JSON that is not an object", raw("[1, 2]"), /the header is not a JSON object/],
    ["__metadata__ that is not strings", raw({ __metadata__: { a: 1 } }), /__metadata__ 'a' is not a string/],
  ];
  for (const [what, bytes, message] of cases)
    it(what, () => {
      expect(() => read(bytes)).toThrow(CellcError);
      expect(() => read(bytes)).toThrow(/^parameters 'p.safetensors' is not a valid safetensors file: /);
      expect(() => read(bytes)).toThrow(message);
    });
  it("a truncated file and an absurd or overlong header length", () => {
    const ok = writeSafetensors({ a: tensor("f32", [4], [1, 2, 3, 4]) });
    expect(() => read(ok.subarray(0, ok.length - 1))).toThrow(
      /'a' has data_offsets \[0, 16\] outside the 15 data bytes/,
    );
    const absurd = ok.slice();
    new DataView(absurd.buffer).setBigUint64(0, 2n ** 62n, true);
    expect(() => read(absurd)).toThrow(
      /header length 4611686018427387904 is over the limit of 100000000 bytes/,
    );
    const long = ok.slice();
    new DataView(long.buffer).setBigUint64(0, 1000n, true);
    expect(() => read(long)).toThrow(/header length 1000 runs past the end of the file \(\d+ bytes\)/);
  });
});

describe("safetensors: F16, BF16 and I64", () => {
  it("F16 to f32 exactly, by the IEEE 754 binary16 bit patterns", () => {
    // bits -> value, from the binary16 definition: sign, 5-bit exponent (bias 15), 10-bit fraction.
    const table: [number, number][] = [
      [0x3c00, 1],
      [0xc000, -2],
      [0x3555, 0.333251953125],
      [0x7bff, 65504], // largest finite
      [0x0400, 2 ** -14], // smallest normal
      [0x0001, 2 ** -24], // smallest subnormal
      [0x03ff, 1023 * 2 ** -24], // largest subnormal
      [0x8001, -(2 ** -24)],
      [0x7c00, Infinity],
      [0xfc00, -Infinity],
    ];
    const bits = [...table.map(([b]) => b), 0x7e00, 0xfc01, 0x8000];
    const t = read(
      raw({ h: { dtype: "F16", shape: [bits.length], data_offsets: [0, 2 * bits.length] } }, u16(bits)),
    ).get("h")!;
    expect(t.dtype).toBe("f32");
    expect(t.stored).toBe("F16");
    table.forEach(([, v], i) => expect(t.data[i]).toBe(v));
    expect(Number.isNaN(t.data[table.length])).toBe(true);
    expect(Number.isNaN(t.data[table.length + 1])).toBe(true);
    expect(Object.is(t.data[table.length + 2], -0)).toBe(true);
  });
  it("BF16 to f32 exactly: the top 16 bits of a float32", () => {
    const table: [number, number][] = [
      [0x3f80, 1],
      [0xc000, -2],
      [0x3eab, 0.333984375],
      [0x7f7f, 255 * 2 ** 120], // largest finite, 0x7f7f0000
      [0x0080, 2 ** -126], // smallest normal
      [0x0001, 2 ** -133], // smallest subnormal, 0x00010000
      [0x7f80, Infinity],
      [0xff80, -Infinity],
    ];
    const bits = [...table.map(([b]) => b), 0x7fc0];
    const t = read(
      raw({ h: { dtype: "BF16", shape: [bits.length], data_offsets: [0, 2 * bits.length] } }, u16(bits)),
    ).get("h")!;
    table.forEach(([, v], i) => expect(t.data[i]).toBe(v));
    expect(Number.isNaN(t.data[table.length])).toBe(true);
  });
  it("I64 becomes i32 when every value fits, else names the tensor and its dtype", () => {
    const i64 = (xs: bigint[]) => new Uint8Array(new BigInt64Array(xs).buffer);
    const fits = read(
      raw({ seq_lens: { dtype: "I64", shape: [3], data_offsets: [0, 24] } }, i64([0n, 7n, -(2n ** 31n)])),
    );
    expect(fits.get("seq_lens")!.dtype).toBe("i32");
    expect(Array.from(fits.get("seq_lens")!.data)).toEqual([0, 7, -(2 ** 31)]);
    const big = raw({ seq_lens: { dtype: "I64", shape: [2], data_offsets: [0, 16] } }, i64([1n, 2n ** 31n]));
    expect(() => read(big)).toThrow(
      /tensor 'seq_lens' \(I64\) holds 2147483648 at index 1, outside the int32 range/,
    );
  });
  it("zero-sized tensors are read and written", () => {
    const back = read(writeSafetensors({ e: tensor("f32", [0, 2, 3]), f: tensor("f32", [1]) }));
    expect(back.get("e")!.shape).toEqual([0, 2, 3]);
    expect(back.get("e")!.data.length).toBe(0);
  });
  it("a tensor named __metadata__ cannot be written", () => {
    expect(() => writeSafetensors({ __metadata__: tensor("f32", [1]) })).toThrow(/the format reserves it/);
  });
  it("metadata is written and read back", () => {
    const file = readSafetensorsFile(
      writeSafetensors({ a: tensor("f32", [1]) }, new Map([["nonfinite", "outputs"]])),
    );
    expect(file.metadata.get("nonfinite")).toBe("outputs");
  });
});

describe("safetensors: property", () => {
  const isCellcError = (f: () => unknown) => {
    try {
      f();
    } catch (e) {
      if (!(e instanceof CellcError)) throw e;
    }
  };
  it("garbage bytes, with or without a plausible header length, give only CellcError", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat({ max: 400 }), (junk, n) => {
        isCellcError(() => read(junk));
        const withLen = new Uint8Array(8 + junk.length);
        new DataView(withLen.buffer).setBigUint64(0, BigInt(n), true);
        withLen.set(junk, 8);
        isCellcError(() => read(withLen));
      }),
      { numRuns: 2000 },
    );
  });
  it("headers of arbitrary JSON entries give tensors or a CellcError", () => {
    const num = fc.oneof(fc.integer({ min: -2, max: 40 }), fc.double(), fc.constant(2 ** 53), fc.string());
    const entry = fc.oneof(
      fc.record(
        {
          dtype: fc.oneof(
            fc.constantFrom("F32", "F64", "I32", "F16", "BF16", "I64", "U8", "__proto__"),
            fc.string(),
          ),
          shape: fc.oneof(fc.array(num, { maxLength: 3 }), fc.jsonValue()),
          data_offsets: fc.oneof(fc.tuple(num, num), fc.jsonValue()),
        },
        { requiredKeys: [] },
      ),
      fc.jsonValue(),
    );
    fc.assert(
      fc.property(
        fc.dictionary(fc.string(), entry, { maxKeys: 4 }),
        fc.uint8Array({ maxLength: 64 }),
        (h, data) => isCellcError(() => read(raw(h, data))),
      ),
      { numRuns: 2000 },
    );
  });
});
