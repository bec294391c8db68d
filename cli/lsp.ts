import { readdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import {
  CodeActionKind,
  CompletionItemKind,
  createConnection,
  DiagnosticSeverity,
  DidChangeWatchedFilesNotification,
  FileChangeType,
  InsertTextFormat,
  LSPErrorCodes,
  MarkupKind,
  ProposedFeatures,
  ResponseError,
  SemanticTokensBuilder,
  SymbolKind,
  TextDocuments,
  TextDocumentSyncKind,
  type CodeAction,
  type CompletionItem,
  type Connection,
  type Diagnostic as LspDiagnostic,
  type DocumentSymbol,
  type Location,
  type Range,
  type TextEdit,
} from "vscode-languageserver/node";
import { TextDocument } from "vscode-languageserver-textdocument";
import { nodeHost } from "./node-host.js";
import { MAX_SOURCE_BYTES, type SourceHost } from "../compiler/check/program.js";
import type { Span } from "../compiler/diag/span.js";
import { formatSource } from "../compiler/format/format.js";
import * as S from "../compiler/service/index.js";

/**
 * `cellc lsp`: the language server, over standard input and output (`--stdio`, which editors pass, is
 * accepted and changes nothing). Everything it knows about .cell files comes from the language service
 * (compiler/service); this file is the protocol: documents, URIs, lines and columns, files on disk.
 */
export async function lspCommand(): Promise<number> {
  const connection = createConnection(ProposedFeatures.all, process.stdin, process.stdout);
  // Standard output carries the protocol: anything printed there would corrupt it.
  const toStderr = (...args: unknown[]) => process.stderr.write(args.map(String).join(" ") + "\n");
  console.log = console.info = console.warn = console.error = console.debug = toStderr;
  serve(connection);
  return new Promise((resolve) => connection.onExit(() => resolve(0)));
}

/** Settings an editor may pass as `initializationOptions`. */
interface Options {
  /** How long after an edit the diagnostics are recomputed, in milliseconds (50 by default). */
  readonly debounceMs?: number;
}

/** Past this many .cell files in the workspace, references and renames look at the open files only. */
const MAX_WORKSPACE_FILES = 2000;

export function serve(connection: Connection): void {
  const documents = new TextDocuments(TextDocument);
  const ws = new Workspace(connection, documents);

  connection.onInitialize((params) => {
    const folders = params.workspaceFolders?.map((f) => f.uri) ?? (params.rootUri ? [params.rootUri] : []);
    ws.roots = folders.filter((u) => u.startsWith("file:")).map((u) => fileURLToPath(u));
    ws.snippets = params.capabilities.textDocument?.completion?.completionItem?.snippetSupport ?? false;
    ws.watchDynamically = params.capabilities.workspace?.didChangeWatchedFiles?.dynamicRegistration ?? false;
    const opts = (params.initializationOptions ?? {}) as Options;
    if (typeof opts.debounceMs === "number" && opts.debounceMs >= 0 && opts.debounceMs <= 10_000)
      ws.debounceMs = opts.debounceMs;
    return {
      capabilities: {
        textDocumentSync: TextDocumentSyncKind.Incremental,
        hoverProvider: true,
        definitionProvider: true,
        referencesProvider: true,
        renameProvider: { prepareProvider: true },
        completionProvider: { triggerCharacters: ["~", "(", "[", ","] },
        documentSymbolProvider: true,
        semanticTokensProvider: {
          legend: { tokenTypes: [...S.SEMANTIC_TYPES], tokenModifiers: [...S.SEMANTIC_MODIFIERS] },
          full: true,
        },
        codeActionProvider: { codeActionKinds: [CodeActionKind.QuickFix] },
        documentFormattingProvider: true,
      },
      serverInfo: { name: "cellc" },
    };
  });
  connection.onInitialized(() => {
    if (ws.watchDynamically)
      void connection.client.register(DidChangeWatchedFilesNotification.type, {
        watchers: [{ globPattern: "**/*.cell" }],
      });
  });

  documents.onDidChangeContent((e) => ws.changed(ws.path(e.document.uri), e.document.uri));
  documents.onDidClose((e) => {
    const path = ws.path(e.document.uri);
    void connection.sendDiagnostics({ uri: e.document.uri, diagnostics: [] });
    ws.changed(path, undefined);
  });
  connection.onDidChangeWatchedFiles((p) => {
    for (const c of p.changes) {
      if (documents.get(c.uri)) continue; // the editor's text wins over the disk's
      if (c.type === FileChangeType.Changed) ws.changed(ws.path(c.uri), undefined);
      else ws.changedAll();
    }
  });

  connection.onHover((p) => {
    const at = ws.at(p.textDocument.uri, p.position);
    const h = at && S.hover(at.a, at.path, at.offset);
    if (!at || !h) return null;
    return {
      contents: { kind: MarkupKind.Markdown, value: h.markdown },
      range: ws.range(at.a, { file: at.path, start: h.start, end: h.end }),
    };
  });
  connection.onDefinition((p) => {
    const at = ws.at(p.textDocument.uri, p.position);
    return at ? S.definition(at.a, at.path, at.offset).map((s) => ws.location(at.a, s)) : [];
  });
  connection.onReferences((p) => {
    const at = ws.at(p.textDocument.uri, p.position);
    if (!at) return [];
    const all = ws.related(at.path);
    const spans = S.references(all, at.path, at.offset, p.context.includeDeclaration);
    return spans.map((s) => ws.location(all.find((a) => a.has(s.file)) ?? at.a, s));
  });
  connection.onPrepareRename((p) => {
    const at = ws.at(p.textDocument.uri, p.position);
    if (!at) return null;
    const r = S.prepareRename(at.a, at.path, at.offset);
    if ("error" in r) throw new ResponseError(LSPErrorCodes.RequestFailed, r.error);
    return { range: ws.range(at.a, { file: at.path, start: r.start, end: r.end }), placeholder: r.name };
  });
  connection.onRenameRequest((p) => {
    const at = ws.at(p.textDocument.uri, p.position);
    if (!at) return null;
    const all = ws.related(at.path);
    const r = S.rename(all, at.path, at.offset, p.newName);
    if ("error" in r) throw new ResponseError(LSPErrorCodes.RequestFailed, r.error);
    const changes: Record<string, TextEdit[]> = {};
    for (const s of r.edits) {
      const a = all.find((x) => x.has(s.file)) ?? at.a;
      (changes[ws.uri(s.file)] ??= []).push({ range: ws.range(a, s), newText: p.newName });
    }
    return { changes };
  });
  connection.onCompletion((p) => {
    const at = ws.at(p.textDocument.uri, p.position);
    if (!at) return [];
    const r = S.complete(at.a, at.path, at.offset);
    const range = ws.range(at.a, { file: at.path, start: r.start, end: r.end });
    return r.items.map((c): CompletionItem => {
      const snippet = ws.snippets && c.snippet !== undefined;
      return {
        label: c.label,
        kind: COMPLETION_KINDS[c.kind],
        detail: c.detail,
        documentation: c.documentation,
        sortText: `${c.sort}${c.label}`,
        textEdit: { range, newText: snippet ? c.snippet! : c.label },
        insertTextFormat: snippet ? InsertTextFormat.Snippet : InsertTextFormat.PlainText,
      };
    });
  });
  connection.onDocumentSymbol((p) => {
    const at = ws.at(p.textDocument.uri, { line: 0, character: 0 });
    if (!at) return [];
    const convert = (s: S.OutlineSymbol): DocumentSymbol => ({
      name: s.name,
      detail: s.detail,
      kind: SYMBOL_KINDS[s.kind],
      range: ws.range(at.a, s.span),
      selectionRange: ws.range(at.a, s.selection),
      children: s.children.map(convert),
    });
    return S.documentSymbols(at.a, at.path).map(convert);
  });
  connection.languages.semanticTokens.on((p) => {
    const at = ws.at(p.textDocument.uri, { line: 0, character: 0 });
    const b = new SemanticTokensBuilder();
    if (!at) return b.build();
    const lines = ws.lines(at.a, at.path);
    for (const t of S.semanticTokens(at.text, at.a, at.path)) {
      const pos = lines.position(t.start);
      const mods = t.modifiers.reduce((m, x) => m | (1 << S.SEMANTIC_MODIFIERS.indexOf(x)), 0);
      b.push(pos.line, pos.character, t.end - t.start, S.SEMANTIC_TYPES.indexOf(t.type), mods);
    }
    return b.build();
  });
  connection.onCodeAction((p) => {
    const at = ws.at(p.textDocument.uri, p.range.start);
    if (!at) return [];
    const end = ws.lines(at.a, at.path).offset(p.range.end);
    return S.codeFixes(at.a, at.path, at.offset, end).map((f): CodeAction => ({
      title: f.title,
      kind: CodeActionKind.QuickFix,
      isPreferred: f.preferred,
      diagnostics: S.fileDiagnostics(at.a, at.path)
        .filter((d) => d.diagnostic === f.diagnostic)
        .map((d) => ws.diagnostic(at.a, at.path, d)),
      edit: {
        changes: {
          [p.textDocument.uri]: f.edits.map((e) => ({ range: ws.range(at.a, e.span), newText: e.text })),
        },
      },
    }));
  });
  connection.onDocumentFormatting((p) => {
    const doc = documents.get(p.textDocument.uri);
    if (!doc) return [];
    const text = doc.getText();
    let r: ReturnType<typeof formatSource>;
    try {
      r = formatSource(ws.path(doc.uri), text);
    } catch (e) {
      // The formatter refused its own output (a bug in it): the text stays as it is.
      connection.console.error(`cellc: not formatted: ${e instanceof Error ? e.message : String(e)}`);
      return [];
    }
    if (!r.ok || !r.changed) return [];
    // One edit over the part that changed, so that the cursor and folds outside it stay where they were.
    let start = 0;
    while (start < text.length && start < r.text.length && text[start] === r.text[start]) start++;
    let end = 0;
    while (
      end < text.length - start &&
      end < r.text.length - start &&
      text[text.length - 1 - end] === r.text[r.text.length - 1 - end]
    )
      end++;
    return [
      {
        range: { start: doc.positionAt(start), end: doc.positionAt(text.length - end) },
        newText: r.text.slice(start, r.text.length - end),
      },
    ];
  });

  documents.listen(connection);
  connection.listen();
}

const COMPLETION_KINDS: Record<S.CompletionKind, CompletionItemKind> = {
  keyword: CompletionItemKind.Keyword,
  cell: CompletionItemKind.Class,
  fn: CompletionItemKind.Function,
  builtin: CompletionItemKind.Function,
  initialiser: CompletionItemKind.Constructor,
  input: CompletionItemKind.Field,
  state: CompletionItemKind.Variable,
  param: CompletionItemKind.Property,
  equation: CompletionItemKind.Variable,
  dim: CompletionItemKind.TypeParameter,
  fnParam: CompletionItemKind.Variable,
  value: CompletionItemKind.EnumMember,
};

const SYMBOL_KINDS: Record<S.DeclKind, SymbolKind> = {
  cell: SymbolKind.Class,
  model: SymbolKind.Module,
  fn: SymbolKind.Function,
  fnParam: SymbolKind.Variable,
  input: SymbolKind.Field,
  state: SymbolKind.Variable,
  param: SymbolKind.Property,
  equation: SymbolKind.Variable,
  next: SymbolKind.Variable,
  dim: SymbolKind.TypeParameter,
  modelInput: SymbolKind.Field,
  embed: SymbolKind.Property,
  readout: SymbolKind.Variable,
};

const SEVERITY = {
  error: DiagnosticSeverity.Error,
  warning: DiagnosticSeverity.Warning,
  note: DiagnosticSeverity.Information,
} as const;

/** The open documents, the files on disk they import, and the analyses of both, kept until a file changes. */
class Workspace {
  roots: string[] = [];
  snippets = false;
  watchDynamically = false;
  debounceMs = 50;
  private readonly checked = new Map<string, S.Analysis>();
  /** Analyses of workspace files that are not open, for references and renames (not checked). */
  private readonly navigation = new Map<string, S.Analysis>();
  private workspaceFiles?: string[];
  private readonly uris = new Map<string, string>();
  private readonly lineIndexes = new Map<string, S.LineIndex>();
  private readonly pending = new Set<string>();
  private timer?: ReturnType<typeof setTimeout>;
  /** Open documents' texts first, then the disk; the CLI's limit on a file's size for both. */
  readonly host: SourceHost = {
    read: (path) => {
      const uri = this.uris.get(path);
      const doc = uri === undefined ? undefined : this.documents.get(uri);
      if (!doc) return nodeHost.read(path);
      const text = doc.getText();
      if (Buffer.byteLength(text) > MAX_SOURCE_BYTES)
        throw new Error(`larger than the limit of ${MAX_SOURCE_BYTES} bytes`);
      return text;
    },
  };

  constructor(
    private readonly connection: Connection,
    private readonly documents: TextDocuments<TextDocument>,
  ) {}

  /** A file's path (the name diagnostics and imports use); a URI that is not a file stands for itself. */
  path(uri: string): string {
    const p = uri.startsWith("file:") ? fileURLToPath(uri) : uri;
    this.uris.set(p, uri);
    return p;
  }

  uri(path: string): string {
    return (
      this.uris.get(path) ?? (path.includes(":") && !path.startsWith("/") ? path : pathToFileURL(path).href)
    );
  }

  analysis(path: string): S.Analysis {
    let a = this.checked.get(path);
    if (!a) this.checked.set(path, (a = new S.Analysis(path, this.host)));
    return a;
  }

  /** The document, its analysis and the offset of a position in it. */
  at(uri: string, position: { line: number; character: number }) {
    const doc = this.documents.get(uri);
    if (!doc) return undefined;
    const path = this.path(uri);
    const a = this.analysis(path);
    return { a, path, text: doc.getText(), offset: doc.offsetAt(position) };
  }

  /** The file's own analysis, then those of every open or workspace file whose program holds it. */
  related(path: string): S.Analysis[] {
    const out = [this.analysis(path)];
    for (const doc of this.documents.all()) {
      const p = this.path(doc.uri);
      if (p !== path) out.push(this.analysis(p));
    }
    for (const f of this.files()) {
      if (f === path || this.checked.has(f)) continue;
      let a = this.navigation.get(f);
      if (!a) this.navigation.set(f, (a = new S.Analysis(f, this.host, { check: false })));
      out.push(a);
    }
    return out.filter((a) => a.has(path));
  }

  /** The .cell files under the workspace folders (found once, again when files come or go). */
  private files(): string[] {
    if (this.workspaceFiles) return this.workspaceFiles;
    const out: string[] = [];
    const walk = (dir: string, depth: number) => {
      if (depth > 12 || out.length >= MAX_WORKSPACE_FILES) return;
      let entries;
      try {
        entries = readdirSync(dir, { withFileTypes: true });
      } catch {
        return;
      }
      for (const e of entries) {
        if (out.length >= MAX_WORKSPACE_FILES) return;
        const p = join(dir, e.name);
        if (e.isDirectory() && !e.name.startsWith(".") && e.name !== "node_modules" && e.name !== "dist")
          walk(p, depth + 1);
        else if (e.isFile() && e.name.endsWith(".cell")) out.push(p);
      }
    };
    for (const r of this.roots) walk(r, 0);
    return (this.workspaceFiles = out);
  }

  /** A file's text changed (an edit, a close, a change on disk): its analyses and its importers' go. */
  changed(path: string, uri: string | undefined): void {
    if (uri) this.uris.set(path, uri);
    const affected = new Set<string>([path]);
    for (const cache of [this.checked, this.navigation])
      for (const [entry, a] of cache)
        if (a.has(path) || entry === path) {
          cache.delete(entry);
          affected.add(entry);
        }
    this.lineIndexes.clear();
    this.schedule(affected);
  }

  /** Files came or went: every analysis may have read one (an import that failed may work now). */
  changedAll(): void {
    const affected = new Set(this.checked.keys());
    this.checked.clear();
    this.navigation.clear();
    this.workspaceFiles = undefined;
    this.schedule(affected);
  }

  private schedule(paths: Iterable<string>): void {
    for (const p of paths) this.pending.add(p);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.publish(), this.debounceMs);
  }

  private publish(): void {
    const paths = [...this.pending];
    this.pending.clear();
    for (const path of paths) {
      const uri = this.uris.get(path);
      const doc = uri === undefined ? undefined : this.documents.get(uri);
      if (!doc) continue;
      const a = this.analysis(path);
      const diagnostics = S.fileDiagnostics(a, path).map((d) => this.diagnostic(a, path, d));
      void this.connection.sendDiagnostics({ uri: doc.uri, version: doc.version, diagnostics });
    }
  }

  diagnostic(a: S.Analysis, path: string, d: S.FileDiagnostic): LspDiagnostic {
    return {
      range: this.range(a, { file: path, start: d.start, end: d.end }),
      severity: SEVERITY[d.severity],
      code: d.code,
      source: "cellc",
      message: d.message,
      relatedInformation: d.related.map((r) => ({ location: this.location(a, r.span), message: r.message })),
    };
  }

  lines(a: S.Analysis, file: string): S.LineIndex {
    const text = a.text(file) ?? "";
    let li = this.lineIndexes.get(file);
    if (!li || li.text !== text) this.lineIndexes.set(file, (li = new S.LineIndex(text)));
    return li;
  }

  range(a: S.Analysis, s: Span): Range {
    const li = this.lines(a, s.file);
    return { start: li.position(s.start), end: li.position(Math.max(s.start, s.end)) };
  }

  location(a: S.Analysis, s: Span): Location {
    return { uri: this.uri(s.file), range: this.range(a, s) };
  }
}
