// The sequence arenas of the wasm backend's calls, in its memory. A call that keeps no tape gives its arena
// back at once. A kept arena (the forward values the backward pass reads) stays until its tape is
// collected, but a runner keeps at most `perOwner` of them in the memory: so memory stays bounded in a
// synchronous training loop, where no finaliser runs. To make room, an arena whose backward pass has run
// is released (the usual case: the last training step's); one still waiting for its backward pass is
// copied out to an ordinary array and back in when the pass takes it, so that any order of forward and
// backward calls stays correct. Only a second backward pass over a released arena is refused.
import type { ArenaLease } from "../cpu/runner.js";
import { CellcError } from "../tensor.js";
import type { WasmHeap } from "./heap.js";

interface Block {
  at: number;
  readonly n: number;
  readonly owner: object;
  live: boolean;
  /** Taken by the forward pass, then by each backward pass. */
  takes: number;
  saved?: Float32Array;
  released?: boolean;
}

export class Arenas {
  private readonly live = new WeakMap<object, Block[]>(); // per owner, least recently used first
  private readonly registry = new FinalizationRegistry<Block>((b) => this.free(b));
  /** Arenas copied out and back in so far (for tests). */
  spills = 0;
  /**
   * What a new arena is filled with: nothing by default, since a schedule writes every element of its
   * sequence arena before reading it (zeroing LSTM S's 10 MB took 16% of a forward pass). Tests fill
   * with NaN to hold the schedule to that.
   */
  fill: number | undefined = undefined;

  constructor(
    private readonly heap: WasmHeap,
    private readonly perOwner = 2,
  ) {}

  lease(owner: object, n: number): ArenaLease {
    const b: Block = { at: -1, n, owner, live: false, takes: 0 };
    this.bring(b);
    const lease = {
      take: () => {
        if (b.released)
          throw new CellcError(
            "this forward pass's tape was released after its backward pass, to make room for later ones: run forward again",
          );
        b.takes++;
        this.bring(b);
        return this.heap.f32(b.at, n);
      },
      drop: () => {
        this.free(b);
        b.saved = undefined;
      },
    };
    this.registry.register(lease, b);
    return lease;
  }

  /** Makes a block live (its saved copy when it was put aside) and the most recent. */
  private bring(b: Block) {
    const list = this.live.get(b.owner) ?? [];
    this.live.set(b.owner, list);
    if (b.live) {
      list.splice(list.indexOf(b), 1);
      list.push(b);
      return;
    }
    while (list.length >= this.perOwner) {
      const used = list.findIndex((o) => o.takes > 1);
      const [old] = list.splice(used >= 0 ? used : 0, 1) as [Block];
      if (used >= 0) old.released = true;
      else {
        old.saved = this.heap.f32(old.at, old.n).slice();
        this.spills++;
      }
      this.heap.give(old.at, 4 * old.n);
      old.live = false;
    }
    b.at = this.heap.take(4 * b.n);
    const view = this.heap.f32(b.at, b.n);
    if (b.saved) view.set(b.saved);
    else if (this.fill !== undefined) view.fill(this.fill);
    b.saved = undefined;
    b.live = true;
    list.push(b);
  }

  private free(b: Block) {
    if (!b.live) return;
    b.live = false;
    this.heap.give(b.at, 4 * b.n);
    const list = this.live.get(b.owner);
    if (list) list.splice(list.indexOf(b), 1);
  }
}
