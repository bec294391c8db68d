import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { BUILTINS, INITIALISERS } from "../../compiler/check/builtins.js";
import { KEYWORDS } from "../../compiler/service/tokens.js";

// The VS Code package (editors/vscode): its TextMate grammar must know what the checker knows.

const json = (p: string) => JSON.parse(readFileSync(p, "utf8")) as Record<string, unknown>;
const grammar = json("editors/vscode/syntaxes/cell.tmLanguage.json") as {
  scopeName: string;
  repository: Record<string, { match?: string; patterns?: { match: string }[] }>;
};
const words = (rule: string) => {
  const m = /\(([a-z_|]+)\)/.exec(grammar.repository[rule]!.match!)!;
  return m[1]!.split("|").sort();
};

describe("the VS Code package", () => {
  it("highlights every built-in function, initialiser and keyword", () => {
    expect(words("builtin")).toEqual(Object.keys(BUILTINS).sort());
    expect(words("initialiser")).toEqual(Object.keys(INITIALISERS).sort());
    expect(words("keyword")).toEqual([...KEYWORDS].sort());
  });

  it("has patterns that compile, and finds what they name", () => {
    const rx = (rule: string) => new RegExp(grammar.repository[rule]!.match!, "m");
    for (const [name, rule] of Object.entries(grammar.repository))
      for (const m of [rule.match, ...(rule.patterns ?? []).map((p) => p.match)])
        if (m) expect(() => new RegExp(m), name).not.toThrow();
    expect(rx("next").exec("  c' = f * c")?.[0]).toBe("c'");
    expect(rx("model-word").exec("  readout on last y = W @ h")?.slice(1)).toEqual(["readout", "on"]);
    expect(rx("model-word").exec("  loss = 1")).toBeNull();
    expect(rx("number").exec("x2 + 1.5e-3")?.[0]).toBe("1.5e-3");
  });

  it("declares the language, the grammar and the client that starts `cellc lsp`", () => {
    const pkg = json("editors/vscode/package.json") as {
      main: string;
      contributes: { languages: { id: string; extensions: string[] }[]; grammars: { scopeName: string }[] };
      dependencies: Record<string, string>;
    };
    expect(pkg.contributes.languages[0]).toMatchObject({ id: "cell", extensions: [".cell"] });
    expect(pkg.contributes.grammars[0]!.scopeName).toBe(grammar.scopeName);
    expect(pkg.main).toBe("./out/extension.js");
    const root = json("package.json") as { devDependencies: Record<string, string> };
    expect(pkg.dependencies["vscode-languageclient"]).toBe(root.devDependencies["vscode-languageclient"]);
    expect(readFileSync("editors/vscode/src/extension.ts", "utf8")).toContain('args: ["lsp"]');
    json("editors/vscode/language-configuration.json");
  });
});
