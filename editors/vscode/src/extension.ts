// The VS Code side of cellc: starts `cellc lsp` and hands it every .cell document. Highlighting comes from
// the TextMate grammar at once, and is refined by the server's semantic tokens; everything else (the
// diagnostics, hover, definitions, completion, rename, formatting) is the server's.
import { workspace, type ExtensionContext } from "vscode";
import {
  LanguageClient,
  TransportKind,
  type LanguageClientOptions,
  type ServerOptions,
} from "vscode-languageclient/node";

let client: LanguageClient | undefined;

export async function activate(context: ExtensionContext): Promise<void> {
  const command = workspace.getConfiguration("cellc").get<string>("path") || "cellc";
  // `cellc` installed by npm is a .cmd file on Windows, which only a shell runs.
  const run = {
    command,
    args: ["lsp"],
    transport: TransportKind.stdio,
    options: { shell: process.platform === "win32" },
  };
  const serverOptions: ServerOptions = { run, debug: run };
  const clientOptions: LanguageClientOptions = {
    documentSelector: [
      { scheme: "file", language: "cell" },
      { scheme: "untitled", language: "cell" },
    ],
    // Imported files that change on disk re-check the files that import them.
    synchronize: { fileEvents: workspace.createFileSystemWatcher("**/*.cell") },
  };
  client = new LanguageClient("cellc", "cellc", serverOptions, clientOptions);
  context.subscriptions.push({ dispose: () => void client?.stop() });
  await client.start();
}

export function deactivate(): Promise<void> | undefined {
  return client?.stop();
}
