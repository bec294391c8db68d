import { describe, expect, it } from "vitest";
import { Func, ModuleWriter, sleb, T, uleb } from "../../kernels/writer.js";
import { buildKernelModule } from "../../kernels/library.js";

describe("LEB128", () => {
  // Encodings from the WebAssembly spec's and DWARF's worked examples.
  it("unsigned", () => {
    expect(uleb(0)).toEqual([0x00]);
    expect(uleb(127)).toEqual([0x7f]);
    expect(uleb(128)).toEqual([0x80, 0x01]);
    expect(uleb(624485)).toEqual([0xe5, 0x8e, 0x26]);
    expect(uleb(0xffffffff)).toEqual([0xff, 0xff, 0xff, 0xff, 0x0f]);
    expect(() => uleb(-1)).toThrow(/u32/);
    expect(() => uleb(2 ** 32)).toThrow(/u32/);
  });
  it("signed", () => {
    expect(sleb(0)).toEqual([0x00]);
    expect(sleb(-1)).toEqual([0x7f]);
    expect(sleb(63)).toEqual([0x3f]);
    expect(sleb(64)).toEqual([0xc0, 0x00]);
    expect(sleb(-64)).toEqual([0x40]);
    expect(sleb(-65)).toEqual([0xbf, 0x7f]);
    expect(sleb(-123456)).toEqual([0xc0, 0xbb, 0x78]);
    expect(sleb(2 ** 31 - 1)).toEqual([0xff, 0xff, 0xff, 0xff, 0x07]);
    expect(sleb(-(2 ** 31))).toEqual([0x80, 0x80, 0x80, 0x80, 0x78]);
    expect(() => sleb(2 ** 31)).toThrow(/i32/);
  });
});

function module(build: (m: ModuleWriter) => void, shared = true): Uint8Array<ArrayBuffer> {
  const m = new ModuleWriter({ module: "env", field: "memory", initial: 1, maximum: 16, shared });
  build(m);
  return m.encode();
}

function run(bytes: Uint8Array<ArrayBuffer>, shared = true) {
  expect(WebAssembly.validate(bytes)).toBe(true);
  const memory = new WebAssembly.Memory({ initial: 1, maximum: 16, shared });
  const inst = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } });
  return { exports: inst.exports as Record<string, (...a: number[]) => number>, memory };
}

describe("module writer", () => {
  it("an empty module is the 8-byte header plus the sections, and validates", () => {
    const bytes = module(() => {});
    expect([...bytes.slice(0, 8)]).toEqual([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);
    expect(WebAssembly.validate(bytes)).toBe(true);
  });
  it("imports a shared memory with the limits given", () => {
    const imports = WebAssembly.Module.imports(new WebAssembly.Module(module(() => {})));
    expect(imports).toEqual([{ module: "env", name: "memory", kind: "memory" }]);
    // A shared import refuses an unshared memory; an unshared one is written with the other flag.
    expect(() =>
      run(
        module(() => {}, true),
        false,
      ),
    ).toThrow();
    expect(
      run(
        module(() => {}, false),
        false,
      ),
    ).toBeTruthy();
  });
  it("functions: params, locals of several types, calls, loops and exports", () => {
    const { exports } = run(
      module((m) => {
        const sq = new Func([T.i32], [T.i32]).get(0).get(0).op("i32.mul");
        const isq = m.add(sq);
        // sum_{i<n} sq(i) with a loop, a v128 and an f32 local in between the i32 ones
        const f = new Func([T.i32], [T.i32]);
        const i = f.local(T.i32);
        f.local(T.v128);
        f.local(T.f32);
        const s = f.local(T.i32);
        f.block().loop().get(i).get(0).op("i32.ge_s").brIf(1);
        f.get(s).get(i).call(isq).op("i32.add").set(s);
        f.get(i).i32(1).op("i32.add").set(i).br(0).end().end().get(s);
        m.add(f, "sumsq");
        m.add(new Func([], [T.i32]).i32(-123456), "neg");
      }),
    );
    expect(exports.sumsq!(10)).toBe(285);
    expect(exports.neg!()).toBe(-123456);
  });
  it("SIMD: loads, stores, splats, lanes, comparisons and bitselect", () => {
    const { exports, memory } = run(
      module((m) => {
        // out[0..4] = max(a, b) where a > b else a * b + splat(0.5), via bitselect; out[4] = lane 2 of a
        const f = new Func([T.i32, T.i32, T.i32]);
        const [a, b] = [f.local(T.v128), f.local(T.v128)];
        f.get(0).mem("v128.load").set(a).get(1).mem("v128.load").set(b);
        f.get(2)
          .get(a)
          .get(b)
          .op("f32x4.max")
          .get(a)
          .get(b)
          .op("f32x4.mul")
          .f32(0.5)
          .op("f32x4.splat", "f32x4.add");
        f.get(a).get(b).op("f32x4.gt", "v128.bitselect").mem("v128.store");
        f.get(2).get(a).lane("f32x4.extract_lane", 2).mem("f32.store", 16);
        m.add(f, "k");
      }),
    );
    const x = new Float32Array(memory.buffer);
    x.set([1, -2, 3, 4], 0);
    x.set([0.5, 5, -1, 4], 4);
    exports.k!(0, 16, 32);
    expect([...x.slice(8, 13)]).toEqual([1, -9.5, 3, 16.5, 3]);
  });
  it("refuses a body with an unclosed block", () => {
    const f = new Func([]).block();
    expect(() => module((m) => m.add(f))).toThrow(/unclosed/);
  });
  it("the kernel module validates for every tiling the generator accepts", () => {
    for (const t of [
      { mr: 1, nr: 4, kc: 1, nc: 4 },
      { mr: 4, nr: 8, kc: 256, nc: 128 },
      { mr: 6, nr: 12, kc: 64, nc: 24 },
    ]) {
      expect(WebAssembly.validate(buildKernelModule(t).bytes)).toBe(true);
    }
    expect(() => buildKernelModule({ mr: 4, nr: 6, kc: 8, nc: 12 })).toThrow(/tiling/);
  });
});
