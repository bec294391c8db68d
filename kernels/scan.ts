// The scan of a scan state (artifact/schedule.ts ScanState) as WebAssembly SIMD: one function for both
// directions, over a range of lanes (batch rows x features) that the pool divides across threads.
//   scan(D, P, A, ld, T, n): for k = 0 .. T-1: D_k[i] += A_k[i] * P_k[i] for i < n, where X_k = X + k * ld
// (byte addresses; ld in bytes, negative to run backward in time). Forward: D = s[1], P = s[0], A = a[0],
// ld = one step. Backward: D = g[T-1], P = g[T], A = a[T-1], ld = minus one step. Each lane's recurrence
// is computed step by step, so any division of the lanes gives bit-identical results.
import { Func, T, type ModuleWriter } from "./writer.js";

export function addScan(m: ModuleWriter): void {
  const f = new Func([T.i32, T.i32, T.i32, T.i32, T.i32, T.i32]);
  const [D, P, A, LD, STEPS, N] = [0, 1, 2, 3, 4, 5];
  const [k, i, nb, vb] = [f.local(T.i32), f.local(T.i32), f.local(T.i32), f.local(T.i32)];
  f.get(N).i32(2).op("i32.shl").tee(nb).i32(-16).op("i32.and").set(vb);
  f.i32(0).set(k);
  f.block().loop();
  f.get(k).get(STEPS).op("i32.ge_s").brIf(1);
  f.i32(0).set(i);
  for (const [width, limit] of [
    [4, vb],
    [1, nb],
  ] as const) {
    f.block().loop();
    f.get(i).get(limit).op("i32.ge_s").brIf(1);
    const at = (base: number) => f.get(base).get(i).op("i32.add");
    if (width === 4) {
      at(D);
      at(D).mem("v128.load");
      at(A).mem("v128.load");
      at(P).mem("v128.load");
      f.op("f32x4.mul", "f32x4.add").mem("v128.store");
    } else {
      at(D);
      at(D).mem("f32.load");
      at(A).mem("f32.load");
      at(P).mem("f32.load");
      f.op("f32.mul", "f32.add").mem("f32.store");
    }
    f.get(i)
      .i32(4 * width)
      .op("i32.add")
      .set(i)
      .br(0)
      .end()
      .end();
  }
  for (const x of [D, P, A]) f.get(x).get(LD).op("i32.add").set(x);
  f.get(k).i32(1).op("i32.add").set(k).br(0).end().end();
  m.add(f, "scan");
}
