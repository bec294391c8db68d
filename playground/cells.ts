// The built-in cells (examples/cells), bundled as text, and a source host that imports from them: the page
// has no file system, and a cell may `import "lstm.cell"` to extend it.
import type { SourceHost } from "../compiler/check/program.js";

const raw = import.meta.glob("../examples/cells/*.cell", {
  query: "?raw",
  import: "default",
  eager: true,
}) as Record<string, string>;

/** File name to text, in name order. */
export const BUILT_IN: ReadonlyMap<string, string> = new Map(
  Object.entries(raw)
    .map(([path, text]) => [path.slice(path.lastIndexOf("/") + 1), text] as const)
    .sort(([a], [b]) => (a < b ? -1 : 1)),
);

/** Whether a built-in file is a variant of another cell (`cell x extends y`). */
export const isVariant = (text: string) => /^\s*cell\s+\w+\s+extends\b/m.test(text);

export const builtInHost: SourceHost = {
  read(path: string): string {
    const text = BUILT_IN.get(path);
    if (text === undefined) throw new Error("the playground can import only the built-in cells");
    return text;
  },
};
