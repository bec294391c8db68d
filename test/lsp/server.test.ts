import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type {
  CodeAction,
  CompletionItem,
  Diagnostic,
  DocumentSymbol,
  Hover,
  Location,
  SemanticTokens,
  TextEdit,
  WorkspaceEdit,
} from "vscode-languageserver/node";
import { formatSource } from "../../compiler/format/format.js";
import { Editor } from "./client.js";

// `cellc lsp` driven as an editor drives it: the built command (`npm run build` first, as for
// test/cli), spawned, spoken to in JSON-RPC over its standard input and output.

const root = resolve(".");
const read = (p: string) => readFileSync(p, "utf8");
const doc = (uri: string) => ({ textDocument: { uri } });
const pos = (text: string, needle: string, nth = 0) => {
  let at = -1;
  for (let i = 0; i <= nth; i++) at = text.indexOf(needle, at + 1);
  if (at < 0) throw new Error(`'${needle}' not found`);
  const before = text.slice(0, at).split(/\r\n|\r|\n/);
  return { line: before.length - 1, character: before[before.length - 1]!.length };
};

let ed: Editor;
beforeAll(async () => {
  ed = await Editor.start(root);
});
afterAll(async () => {
  expect(await ed.stop()).toBe(0);
});

/** One diagnostic as `cellc check` prints it: header, place, and its notes with their places. */
interface Printed {
  severity: string;
  code: string;
  message: string;
  at?: string;
  notes: { message: string; at?: string }[];
}

function parseCli(stderr: string): Printed[] {
  const out: Printed[] = [];
  for (const block of stderr.split(/\n(?=(?:error|warning|note)\[\w+\]: )/)) {
    const lines = block.split("\n");
    const head = /^(error|warning|note)\[(\w+)\]: (.*)$/.exec(lines[0] ?? "");
    if (!head) continue;
    const d: Printed = { severity: head[1]!, code: head[2]!, message: head[3]!, notes: [] };
    for (const l of lines.slice(1)) {
      const loc = /^\s*--> (.*)$/.exec(l);
      const note = /^note: (.*)$/.exec(l);
      const bare = /^\s*= note: (.*)$/.exec(l);
      if (loc && d.notes.length === 0 && d.at === undefined) d.at = where(loc[1]!);
      else if (loc) d.notes[d.notes.length - 1]!.at = where(loc[1]!);
      else if (note) d.notes.push({ message: note[1]! });
      else if (bare) d.notes.push({ message: bare[1]! });
    }
    out.push(d);
  }
  return out;
}
const where = (fileLineCol: string) => {
  const m = /^(.*):(\d+):(\d+)$/.exec(fileLineCol)!;
  return `${resolve(m[1]!)}:${m[2]}:${m[3]}`;
};

/** The same, from what the server published. */
function fromLsp(uri: string, ds: Diagnostic[]): Printed[] {
  const severity = ["", "error", "warning", "note"];
  const at = (u: string, p: { line: number; character: number }) =>
    `${fileURLToPath(u)}:${p.line + 1}:${p.character + 1}`;
  return ds.map((d) => {
    const [message, ...rest] = String(d.message).split("\n");
    const spanned = (d.relatedInformation ?? []).map((r) => ({
      message: r.message,
      at: at(r.location.uri, r.location.range.start),
    }));
    const bare = rest.map((l) => ({ message: l.replace(/^note: /, "") }));
    return {
      severity: severity[d.severity ?? 1]!,
      code: String(d.code),
      message: message!,
      at: at(uri, d.range.start),
      // The CLI prints the notes in order; the protocol keeps those with a place apart from the others.
      notes: [...spanned, ...bare],
    };
  });
}
const byPlace = (ds: Printed[]) =>
  ds.map((d) => ({ ...d, notes: [...d.notes].sort((a, b) => (a.at ?? "~").localeCompare(b.at ?? "~")) }));

describe("diagnostics", () => {
  const files = ["test/errors", "test/model/errors"].flatMap((dir) =>
    readdirSync(dir)
      .filter((f) => f.endsWith(".cell"))
      .map((f) => `${dir}/${f}`),
  );

  it("are those `cellc check` prints, for every error baseline", async () => {
    const cli = spawnSync(process.execPath, ["bin/cellc.js", "check", ...files], { encoding: "utf8" });
    const printed = parseCli(cli.stderr);
    let compared = 0;
    for (const f of files) {
      const uri = ed.open(resolve(f), read(f));
      const got = fromLsp(uri, await ed.diagnostics(uri));
      const want = printed.filter((d) => d.at?.startsWith(resolve(f) + ":"));
      expect(byPlace(got), f).toEqual(byPlace(want));
      compared += got.length;
      ed.close(uri);
    }
    expect(compared).toBeGreaterThan(files.length);
  });

  it("follow the edits as they are typed", async () => {
    const dir = mkdtempSync(join(tmpdir(), "cellc-lsp-"));
    const path = join(dir, "rnn.cell");
    const text = read("examples/cells/rnn.cell");
    writeFileSync(path, text);
    const uri = ed.open(path, text);
    expect(await ed.diagnostics(uri)).toEqual([]);
    // Type a typo into `+ b)`: one incremental edit.
    const at = pos(text, "+ b)", 1); // the first is in the header comment
    ed.change(uri, "+ bb", { start: at, end: { line: at.line, character: at.character + 3 } });
    const [d] = await ed.diagnostics(uri);
    expect(d).toMatchObject({ code: "E010", message: "unknown name 'bb'; did you mean 'b'?", severity: 1 });
    expect(d!.range.start).toEqual({ line: at.line, character: at.character + 2 });
    ed.change(uri, text);
    expect(await ed.diagnostics(uri)).toEqual([]);
    ed.close(uri);
  });

  it("re-check a file's importers when it changes", async () => {
    const dir = mkdtempSync(join(tmpdir(), "cellc-lsp-"));
    const base = join(dir, "base.cell");
    const child = join(dir, "child.cell");
    const baseText = read("examples/cells/lstm.cell");
    const childText =
      'import "base.cell"\n\ncell peep extends lstm {\n  param pf : [H]\n  f = sigmoid(Wf @ x + pf * c + bf)\n}\n';
    writeFileSync(base, baseText);
    writeFileSync(child, childText);
    const childUri = ed.open(child, childText);
    const baseUri = ed.open(base, baseText);
    expect((await ed.diagnostics(childUri)).map((d) => d.code)).toEqual(["N001"]);
    const before = ed.publishedCount(childUri);
    // Rename Wf in the parent only (unsaved): the child no longer finds it.
    ed.change(baseUri, baseText.replaceAll("Wf", "Wforget"));
    await ed.diagnostics(baseUri);
    for (let i = 0; i < 100 && ed.publishedCount(childUri) === before; i++)
      await new Promise((r) => setTimeout(r, 20));
    const after = await ed.diagnostics(childUri);
    expect(after.map((d) => d.code)).toContain("E010");
    expect(after.find((d) => d.code === "E010")!.message).toMatch(/^unknown name 'Wf'/);
    ed.close(baseUri);
    ed.close(childUri);
  });

  it("put an error in an imported file on the import, pointing to it", async () => {
    const dir = mkdtempSync(join(tmpdir(), "cellc-lsp-"));
    writeFileSync(join(dir, "broken.cell"), "cell b {\n  h' = (\n}\n");
    const text = 'import "broken.cell"\ncell a {\n  input x[D]\n  output x\n}\n';
    const uri = ed.open(join(dir, "a.cell"), text);
    const [d] = await ed.diagnostics(uri);
    expect(d!.code).toBe("E002");
    expect(d!.range.start).toEqual({ line: 0, character: 7 });
    expect(d!.message).toMatch(/broken\.cell:3:1: syntax error: expected an expression, found '}'$/);
    expect(d!.relatedInformation![0]!.location.uri).toBe(pathToFileURL(join(dir, "broken.cell")).href);
    ed.close(uri);
  });
});

describe("navigation", () => {
  const cifg = resolve("examples/cells/cifg.cell");
  const lstm = resolve("examples/cells/lstm.cell");
  const onnx = resolve("examples/cells/onnx_lstm.cell");

  it("hover: a parameter's shape, an equation's, a built-in's doc", async () => {
    const text = read(lstm);
    const uri = ed.open(lstm, text);
    const hover = (needle: string, nth = 0) =>
      ed.request<Hover>("textDocument/hover", { ...doc(uri), position: pos(text, needle, nth) });
    const wf = await hover("Wf @");
    expect((wf.contents as { value: string }).value).toContain("Wf : [H, D]");
    expect(wf.range).toEqual({
      start: pos(text, "Wf @"),
      end: { ...pos(text, "Wf @"), character: pos(text, "Wf @").character + 2 },
    });
    expect(((await hover("f * c", 1)).contents as { value: string }).value).toContain("f : [H]   (per row)");
    expect(((await hover("sigmoid(Wi")).contents as { value: string }).value).toContain("sigmoid(x)");
    expect(((await hover("h'", 2)).contents as { value: string }).value).toContain("h' = o * tanh(c')");
    ed.close(uri);
  });

  it("definition across an import, and of a function from its call", async () => {
    const text = read(cifg);
    const uri = ed.open(cifg, text);
    const [f] = await ed.request<Location[]>("textDocument/definition", {
      ...doc(uri),
      position: pos(text, "f\n"),
    });
    expect(f!.uri).toBe(pathToFileURL(lstm).href);
    expect(f!.range.start).toEqual(pos(read(lstm), "f = sigmoid"));
    const [parent] = await ed.request<Location[]>("textDocument/definition", {
      ...doc(uri),
      position: pos(text, "lstm {"),
    });
    expect(parent!.range.start).toEqual(pos(read(lstm), "lstm {"));
    ed.close(uri);
    const o = read(onnx);
    const ou = ed.open(onnx, o);
    const [gate] = await ed.request<Location[]>("textDocument/definition", {
      ...doc(ou),
      position: pos(o, "gate(Wf"),
    });
    expect(gate!.range.start).toEqual(pos(o, "gate(W,"));
    ed.close(ou);
  });

  it("references: a parent's parameter in the workspace's children, open or not", async () => {
    const text = read(lstm);
    const uri = ed.open(lstm, text);
    const refs = await ed.request<Location[]>("textDocument/references", {
      ...doc(uri),
      position: pos(text, "Wo @"),
      context: { includeDeclaration: true },
    });
    const files = refs.map((r) => fileURLToPath(r.uri).slice(root.length + 1));
    expect(files).toContain("examples/cells/lstm.cell");
    expect(files).toContain("examples/cells/peephole_lstm.cell"); // reads Wo, and is not open
    ed.close(uri);
  });

  it("document symbols: cells with their declarations", async () => {
    const text = read(lstm);
    const uri = ed.open(lstm, text);
    const [cell] = await ed.request<DocumentSymbol[]>("textDocument/documentSymbol", doc(uri));
    expect(cell!.name).toBe("lstm");
    expect(cell!.children!.map((c) => c.name)).toEqual(
      expect.arrayContaining(["x", "h", "Wf", "bf", "i", "h'"]),
    );
    ed.close(uri);
  });

  it("semantic tokens: the shared classes, names refined", async () => {
    const text = read(cifg);
    const uri = ed.open(cifg, text);
    const t = await ed.request<SemanticTokens>("textDocument/semanticTokens/full", doc(uri));
    expect(t.data.length % 5).toBe(0);
    // The first token is the comment on line 0; `import` is a keyword on line 2.
    expect(t.data.slice(0, 5)).toEqual([0, 0, read(cifg).split("\n")[0]!.length, 1, 0]);
    ed.close(uri);
  });
});

describe("editing", () => {
  it("completion inside an expression: names in scope, functions with their parameters", async () => {
    const text =
      "cell c {\n  input x[D]\n  state h[H]\n  param W : [H, D]\n  h' = tanh(W @ x + \n  output h'\n}\n";
    const uri = ed.open(join(root, "untitled-completion.cell"), text);
    const items = await ed.request<CompletionItem[]>("textDocument/completion", {
      ...doc(uri),
      position: pos(text, "\n  output"),
    });
    const labels = items.map((i) => i.label);
    expect(labels).toEqual(expect.arrayContaining(["x", "h", "h'", "W", "sigmoid", "leaky_relu"]));
    expect(items.find((i) => i.label === "leaky_relu")).toMatchObject({
      detail: "leaky_relu(x, alpha=0.01)",
      insertTextFormat: 2,
      textEdit: { newText: "leaky_relu(${1:x})" },
    });
    ed.close(uri);
  });

  it("rename: cell-wide and in the children that extend it", async () => {
    const lstm = resolve("examples/cells/lstm.cell");
    const text = read(lstm);
    const uri = ed.open(lstm, text);
    const edit = await ed.request<WorkspaceEdit>("textDocument/rename", {
      ...doc(uri),
      position: pos(text, "f = sigmoid"),
      newName: "forget",
    });
    const changed = Object.keys(edit.changes!).map((u) => fileURLToPath(u).slice(root.length + 1));
    expect(changed).toEqual(
      expect.arrayContaining([
        "examples/cells/lstm.cell",
        "examples/cells/cifg.cell",
        "examples/cells/peephole_lstm.cell",
        "examples/cells/greff.cell",
      ]),
    );
    expect(edit.changes![uri]).toHaveLength(2); // its equation and its use; not the f in the header comment
    await expect(
      ed.request("textDocument/rename", { ...doc(uri), position: pos(text, "f = sigmoid"), newName: "g" }),
    ).rejects.toThrow("'g' is a name in cell 'lstm' already");
    ed.close(uri);
  });

  it("formatting: the formatter's layout as edits; nothing for a file that does not parse", async () => {
    const text = "cell c {\ninput x[D] ; output x\n  y=tanh( x )\n}\n";
    const uri = ed.open(join(root, "untitled-format.cell"), text);
    const edits = await ed.request<TextEdit[]>("textDocument/formatting", {
      ...doc(uri),
      options: { tabSize: 2, insertSpaces: true },
    });
    expect(apply(text, edits)).toBe((formatSource("x.cell", text) as { text: string }).text);
    ed.change(uri, "cell c {\n  y = (\n}\n");
    expect(
      await ed.request("textDocument/formatting", {
        ...doc(uri),
        options: { tabSize: 2, insertSpaces: true },
      }),
    ).toEqual([]);
    ed.close(uri);
  });

  it("code actions: the fixes of W004, W005 and E010", async () => {
    const cases: [string, string, string][] = [
      ["test/errors/W004.cell", "W004", "output h'"],
      ["test/errors/W005.cell", "W005", "tanh((Un @ r) * h)"],
    ];
    for (const [file, code, fixed] of cases) {
      const text = read(file);
      const uri = ed.open(resolve(file), text);
      const ds = await ed.diagnostics(uri);
      const d = ds.find((x) => x.code === code)!;
      const actions = await ed.request<CodeAction[]>("textDocument/codeAction", {
        ...doc(uri),
        range: d.range,
        context: { diagnostics: [d] },
      });
      expect(actions[0]!.diagnostics![0]!.code).toBe(code);
      expect(actions[0]!.isPreferred).toBe(true);
      expect(apply(text, actions[0]!.edit!.changes![uri]!)).toContain(fixed);
      ed.close(uri);
    }
    const text = read("test/errors/E010.cell").replace("bais", "bas");
    const uri = ed.open(join(root, "untitled-e010.cell"), text);
    const [d] = await ed.diagnostics(uri);
    const [action] = await ed.request<CodeAction[]>("textDocument/codeAction", {
      ...doc(uri),
      range: d!.range,
      context: { diagnostics: [d] },
    });
    expect(action!.title).toBe("Change 'bas' to 'bias'");
    expect(apply(text, action!.edit!.changes![uri]!)).toContain("W @ x + bias");
    ed.close(uri);
  });
});

/** Applies LSP edits (positions in the original text) to a text. */
function apply(text: string, edits: TextEdit[]): string {
  const lines = text.split("\n");
  const offset = (p: { line: number; character: number }) =>
    lines.slice(0, p.line).reduce((n, l) => n + l.length + 1, 0) + p.character;
  const sorted = [...edits].sort((a, b) => offset(b.range.start) - offset(a.range.start));
  let out = text;
  for (const e of sorted)
    out = out.slice(0, offset(e.range.start)) + e.newText + out.slice(offset(e.range.end));
  return out;
}
