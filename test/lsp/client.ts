import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { pathToFileURL } from "node:url";
import {
  createMessageConnection,
  StreamMessageReader,
  StreamMessageWriter,
  type Diagnostic,
  type MessageConnection,
  type PublishDiagnosticsParams,
} from "vscode-languageserver/node";

/**
 * An editor's side of the protocol, for the tests: spawns the built `cellc lsp --stdio` (`npm run build`
 * first, as for test/cli) and speaks JSON-RPC to it over its standard input and output.
 */
export class Editor {
  private readonly published = new Map<string, PublishDiagnosticsParams[]>();
  private readonly waiters: (() => void)[] = [];
  private versions = new Map<string, number>();
  stderr = "";

  private constructor(
    readonly child: ChildProcessWithoutNullStreams,
    readonly rpc: MessageConnection,
  ) {
    rpc.onNotification("textDocument/publishDiagnostics", (p: PublishDiagnosticsParams) => {
      const list = this.published.get(p.uri) ?? [];
      list.push(p);
      this.published.set(p.uri, list);
      for (const w of this.waiters.splice(0)) w();
    });
    rpc.onRequest("client/registerCapability", () => null);
    rpc.onRequest("workspace/configuration", () => []);
    child.stderr.on("data", (d: Buffer) => (this.stderr += d.toString()));
  }

  static async start(root: string, initializationOptions: object = { debounceMs: 0 }): Promise<Editor> {
    const child = spawn(process.execPath, ["bin/cellc.js", "lsp", "--stdio"], { stdio: "pipe" });
    const rpc = createMessageConnection(
      new StreamMessageReader(child.stdout),
      new StreamMessageWriter(child.stdin),
    );
    const editor = new Editor(child, rpc);
    rpc.listen();
    await rpc.sendRequest("initialize", {
      processId: process.pid,
      rootUri: pathToFileURL(root).href,
      workspaceFolders: [{ uri: pathToFileURL(root).href, name: "test" }],
      capabilities: {
        textDocument: { completion: { completionItem: { snippetSupport: true } } },
        workspace: { didChangeWatchedFiles: { dynamicRegistration: true } },
      },
      initializationOptions,
    });
    await rpc.sendNotification("initialized", {});
    return editor;
  }

  open(path: string, text: string): string {
    const uri = pathToFileURL(path).href;
    this.versions.set(uri, 1);
    this.published.delete(uri);
    void this.rpc.sendNotification("textDocument/didOpen", {
      textDocument: { uri, languageId: "cell", version: 1, text },
    });
    return uri;
  }

  /** Replaces a document's whole text, or one range of it. */
  change(uri: string, text: string, range?: { start: Pos; end: Pos }): void {
    const version = (this.versions.get(uri) ?? 1) + 1;
    this.versions.set(uri, version);
    void this.rpc.sendNotification("textDocument/didChange", {
      textDocument: { uri, version },
      contentChanges: [range ? { range, text } : { text }],
    });
  }

  close(uri: string): void {
    void this.rpc.sendNotification("textDocument/didClose", { textDocument: { uri } });
  }

  version(uri: string): number {
    return this.versions.get(uri) ?? 0;
  }

  /** The diagnostics of the document's current version, once they are published. */
  async diagnostics(uri: string, timeoutMs = 20_000): Promise<Diagnostic[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const last = (this.published.get(uri) ?? []).at(-1);
      // The server gives the version it checked; what it sends on a close has none.
      if (last && last.version === this.version(uri)) return last.diagnostics;
      if (Date.now() > deadline) throw new Error(`no diagnostics for ${uri} version ${this.version(uri)}`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 200);
      });
    }
  }

  /** How many times diagnostics were published for a document. */
  publishedCount(uri: string): number {
    return this.published.get(uri)?.length ?? 0;
  }

  request<T>(method: string, params: object): Promise<T> {
    return this.rpc.sendRequest(method, params) as Promise<T>;
  }

  async stop(): Promise<number | null> {
    const exited = new Promise<number | null>((resolve) => this.child.on("exit", (code) => resolve(code)));
    await this.rpc.sendRequest("shutdown");
    await this.rpc.sendNotification("exit");
    const code = await exited;
    this.rpc.dispose();
    return code;
  }
}

export interface Pos {
  line: number;
  character: number;
}
