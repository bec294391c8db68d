import type { NodeId } from "../ir/graph.js";
import type { Dim, Type } from "../../artifact/shape.js";
import type { KernelIR } from "../schedule/types.js";
import type { KernelPlan } from "./plan.js";

/** Where a value's row lives: `arena[off + row * ld + column]` (no row term when it is unbatched). */
export interface Place {
  readonly arena: string;
  readonly off: string;
  readonly ld: string;
  readonly batched: boolean;
}

/**
 * What the JS and WGSL writers share: how a node of the plan is addressed. Binding i of a kernel is at
 * `offs[2i] + t * offs[2i + 1]` in its arena (mem or pmem), held in the variable `o<i>`; scratch lives
 * where each target puts it. Views read their base's rows at a column offset.
 */
export abstract class KernelAddressing {
  constructor(
    protected readonly plan: KernelPlan,
    protected readonly dims: readonly string[],
  ) {}

  protected abstract dim(d: Dim): string;
  /** Arena and offset expression of scratch k. */
  protected abstract scratchSlot(k: number): { arena: string; off: string };

  get k(): KernelIR {
    return this.plan.kernel;
  }
  protected arenaOf(binding: number): string {
    return this.k.bindings[binding]!.arena;
  }

  len(t: Type): string {
    return t.dims.length ? this.dim(t.dims[0]!) : this.one;
  }
  protected abstract one: string;

  /** The leading dimension of a value as it is stored: a matrix's row length, a vector's length. */
  ld(t: Type): string {
    return t.dims.length === 2 ? this.dim(t.dims[1]!) : this.len(t);
  }

  place(id: NodeId): Place {
    const n = this.k.graph.node(id);
    const st = this.plan.storage.get(id)!;
    const ld = this.ld(n.type);
    switch (st.kind) {
      case "binding":
        return { arena: this.arenaOf(st.index), off: `o${st.index}`, ld, batched: n.type.batched };
      case "scratch": {
        const s = this.scratchSlot(st.index);
        return { arena: s.arena, off: s.off, ld, batched: n.type.batched };
      }
      case "free": {
        const b = this.plan.leafBinding.get(id);
        if (b === undefined) throw new Error(`%${id} has no buffer`);
        return { arena: this.arenaOf(b), off: `o${b}`, ld, batched: n.type.batched };
      }
      case "view": {
        const base = this.place(st.of);
        return { ...base, off: `${base.off} + ${this.dim(st.start)}` };
      }
      case "local":
        throw new Error(`%${id} is a local`);
    }
  }

  /** The element at row `b`, column `j` of a place. */
  at(p: Place, b: string, j: string): string {
    const row = p.batched ? ` + ${b} * ${p.ld}` : "";
    return `${p.arena}[${p.off}${row} + ${j}]`;
  }
}
