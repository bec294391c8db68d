// The verifier of the generated JS an artifact carries (compiler/codegen/js.ts, compiler/network/loss.ts,
// compiler/network/optim.ts). An artifact is data: read from a file, its `js` text may have been edited,
// and the runtime must not run an edit. So the text is split into tokens here and checked against the
// small language the emitters write, and what the runtime evaluates is rebuilt from those tokens (the
// comments dropped, one space between tokens), never the text itself:
//
// - no string, template or regular-expression literals, no escapes, nothing outside printable ASCII;
// - identifiers from a closed set: the emitters' fixed names, generated names (`v12`, `d0`, `s01`), the
//   keywords of loops, conditions, declarations and functions, and the globals Math (only as
//   `Math.<fn>(` of a fixed list), Float32Array and Float64Array (only after `new`), Infinity and NaN;
// - property access only to `length` and `BYTES_PER_ELEMENT` (read, not written) and the GEMM methods
//   `nt`, `nn`, `tn` (called);
// - calls only of functions the module declares, `Math.<fn>`, the GEMM methods and `new F(...)` of the
//   typed arrays; no call of a call's result, no array literals;
// - every computed index `a[i]` is rebuilt as `a[+(i)]`: a number, so that no string made by `+` can name
//   a property (`constructor`) of anything.
//
// With these, an edited text cannot reach Function, globalThis, process, import() or any other global,
// whatever it computes. It can still compute wrong numbers or loop: that is the artifact's own business.
import { CellcError } from "./tensor.js";

const KEYWORDS = new Set([
  "const",
  "let",
  "for",
  "while",
  "if",
  "else",
  "return",
  "function",
  "new",
  "export",
  "continue",
  "break",
]);
const GLOBALS = new Set(["Math", "Infinity", "NaN", "Float32Array", "Float64Array"]);
const MATH = new Set(["exp", "expm1", "log", "log1p", "tanh", "max", "min", "abs", "sqrt", "floor", "ceil", "round", "sign"]); // prettier-ignore
/** Names the emitters write: parameters, locals and functions of the kernels, the losses and the optimisers. */
const NAMES = new Set(
  (
    "A B C D F G GEMMS K M O P R T X a acc ao at b c co coef count d dims dof dy eps g gemmNN gemmNT gemmTN " +
    "gi go hp i j k kn lda ldc ldd ldg ldp ldx lens loss lr lse m mem mn mom n need nnBlock ntBlock offs p " +
    "pmem po postmask premask r rows run s scale stepSize sum sumsq t tgt tnScratch update v valid w wd " +
    "nt nn tn wide x xo y z before step loop after"
  ).split(" "),
);
/** Generated names: a short lowercase prefix and a number (`v12`, `d0`, `o3`, `s01`, `sbc2`). */
const GENERATED = /^[a-z]{1,3}[0-9]{1,7}$/;
const READ_PROPS = new Set(["length", "BYTES_PER_ELEMENT"]);
const CALL_PROPS = new Set(["nt", "nn", "tn"]);
/** Longest first, so that `===` is one token. */
const PUNCTUATORS = [
  "===", "!==", "**=", "<=", ">=", "==", "!=", "&&", "||", "++", "--", "+=", "-=", "*=", "/=", "**",
  "{", "}", "(", ")", "[", "]", ";", ",", "<", ">", "+", "-", "*", "/", "%", "!", "?", ":", "=", ".",
]; // prettier-ignore
const ASSIGN = new Set(["=", "+=", "-=", "*=", "/=", "**=", "++", "--"]);
/** Statement heads whose `(...)` is followed by a statement, where `/` would start a regular expression. */
const HEADS = new Set(["if", "for", "while"]);

type Kind = "name" | "number" | "punct";
interface Token {
  readonly kind: Kind;
  readonly text: string;
  /** The line it starts on, from 1. */
  readonly line: number;
}

/** The tokens of `text`, comments dropped; anything outside the language is an error naming its line. */
function tokenize(text: string, fail: (line: number, why: string) => never): Token[] {
  const out: Token[] = [];
  let line = 1;
  let i = 0;
  const n = text.length;
  while (i < n) {
    const c = text[i]!;
    if (c === "\n") {
      line++;
      i++;
      continue;
    }
    if (c === " " || c === "\t" || c === "\r") {
      i++;
      continue;
    }
    if (c === "/" && text[i + 1] === "/") {
      while (i < n && text[i] !== "\n") i++;
      continue;
    }
    if (c === "/" && text[i + 1] === "*") {
      const end = text.indexOf("*/", i + 2);
      if (end < 0) fail(line, "a comment that is never closed");
      for (let k = i; k < end; k++) if (text[k] === "\n") line++;
      i = end + 2;
      continue;
    }
    if (/[A-Za-z_]/.test(c)) {
      let j = i + 1;
      while (j < n && /[A-Za-z0-9_]/.test(text[j]!)) j++;
      out.push({ kind: "name", text: text.slice(i, j), line });
      i = j;
      continue;
    }
    if (/[0-9]/.test(c) || (c === "." && /[0-9]/.test(text[i + 1] ?? ""))) {
      const m = /^(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?/.exec(text.slice(i, i + 400))!;
      const j = i + m[0].length;
      if (j < n && /[A-Za-z0-9_.$\\]/.test(text[j]!))
        fail(line, `a malformed number '${text.slice(i, j + 1)}'`);
      out.push({ kind: "number", text: m[0], line });
      i = j;
      continue;
    }
    const p = PUNCTUATORS.find((q) => text.startsWith(q, i));
    if (!p) {
      const code = c.charCodeAt(0);
      const shown = code >= 0x20 && code < 0x7f ? `'${c}'` : `U+${code.toString(16).padStart(4, "0")}`;
      fail(line, `the character ${shown}`);
    }
    out.push({ kind: "punct", text: p, line });
    i += p.length;
  }
  return out;
}

/** The checked module: the text to evaluate, rebuilt from its tokens, and the names it exports. */
export interface VerifiedJs {
  readonly code: string;
  /** The names it defines at any depth: functions, and the constants it exports. */
  readonly names: ReadonlySet<string>;
}

/**
 * Checks the generated JS of an artifact (see the top of this file) and rebuilds it from its tokens.
 * `what` names it in errors ("cell's", "loss", "optimiser"). Throws a CellcError that says where and why.
 */
export function verifyKernelJs(text: string, what: string): VerifiedJs {
  if (typeof text !== "string") throw new CellcError(`the ${what} kernels are not text`);
  const fail = (line: number, why: string): never => {
    throw new CellcError(
      `the ${what} kernels are not the JS cellc generates (line ${line}: ${why}); an edited artifact is not run`,
    );
  };
  const toks = tokenize(text, fail);
  const declared = new Set<string>();
  const exports = new Set<string>();
  for (let i = 0; i + 1 < toks.length; i++)
    if (toks[i]!.text === "function" && toks[i + 1]!.kind === "name") declared.add(toks[i + 1]!.text);

  const out: string[] = [];
  // Open brackets: what each one is, so that `/` after a statement head and index ends are known.
  const open: { text: string; index: boolean; head: boolean; params?: boolean; body?: boolean }[] = [];
  let lastClose: { head: boolean; params?: boolean } | undefined;
  // Loading the module runs its top level: only declarations may be there (functions, `let x;`, objects of
  // names), so that nothing computes, loops or calls before a kernel is called.
  const inBody = () => open.some((o) => o.body);
  let line = 1;
  for (let i = 0; i < toks.length; i++) {
    const t = toks[i]!;
    const prev = toks[i - 1];
    const next = toks[i + 1];
    const at = (why: string) => fail(t.line, why);
    let emit = t.text;
    if (t.kind === "name") {
      const w = t.text;
      const isProp = prev?.text === "." && prev.kind === "punct";
      if (isProp) {
        const base = toks[i - 2]!;
        if (base.text === "Math") {
          if (!MATH.has(w)) at(`Math.${w} is not one of the functions kernels call`);
          if (next?.text !== "(") at(`Math.${w} must be called`);
        } else if (CALL_PROPS.has(w)) {
          if (next?.text !== "(") at(`'.${w}' must be called`);
        } else if (READ_PROPS.has(w)) {
          if (next && ASSIGN.has(next.text)) at(`'.${w}' cannot be assigned`);
          if (toks[i - 3] && (toks[i - 3]!.text === "++" || toks[i - 3]!.text === "--"))
            at(`'.${w}' cannot be assigned`);
        } else at(`the property '${w}'`);
      } else if (KEYWORDS.has(w)) {
        if (!inBody() && !["function", "export", "const", "let"].includes(w))
          at(`'${w}' outside a function: code that would run when the module loads`);
        if (w === "new" && !(next && ["Float32Array", "Float64Array", "F"].includes(next.text)))
          at("'new' of anything but a float array");
        if (w === "export") {
          const decl = toks[i + 2];
          if (!(next && (next.text === "function" || next.text === "const")) || decl?.kind !== "name")
            at("'export' of anything but a function or a constant");
          exports.add(decl!.text);
          emit = "";
        }
      } else if (GLOBALS.has(w)) {
        if (w === "Math" && next?.text !== ".") at("'Math' other than in Math.<fn>(...)");
        if ((w === "Float32Array" || w === "Float64Array") && prev?.text !== "new")
          at(`'${w}' other than after 'new'`);
        if (next && ASSIGN.has(next.text)) at(`an assignment to '${w}'`);
      } else if (!NAMES.has(w) && !GENERATED.test(w)) at(`the name '${w}'`);
      if (next?.text === "(" && !isProp) {
        const callable =
          declared.has(w) ||
          HEADS.has(w) ||
          w === "function" ||
          w === "return" ||
          (prev?.text === "new" && (w === "F" || w === "Float32Array" || w === "Float64Array"));
        if (!callable) at(`a call of '${w}'`);
      }
    } else if (t.kind === "punct") {
      switch (t.text) {
        case "(": {
          if (prev && (prev.text === ")" || prev.text === "]") && prev.kind === "punct")
            at("a call of a computed value");
          if (prev?.kind === "number") at("a call of a number");
          const params = prev?.text === "function" || toks[i - 2]?.text === "function";
          if (!params && !inBody()) at("code that would run when the module loads");
          open.push({ text: "(", index: false, head: !!prev && HEADS.has(prev.text), params });
          break;
        }
        case "[": {
          const ok =
            prev?.kind === "name" &&
            !KEYWORDS.has(prev.text) &&
            !GLOBALS.has(prev.text) &&
            toks[i - 2]?.text !== ".";
          if (!ok) at("'[' other than an index into a named array");
          open.push({ text: "[", index: true, head: false });
          emit = "[+(";
          break;
        }
        case "{":
          open.push({
            text: "{",
            index: false,
            head: false,
            body: prev?.text === ")" && !!lastClose?.params,
          });
          break;
        case ")":
        case "]":
        case "}": {
          const o = open.pop();
          const want = { ")": "(", "]": "[", "}": "{" }[t.text];
          if (o?.text !== want) at(`an unmatched '${t.text}'`);
          lastClose = { head: o!.head, params: o!.params };
          if (o!.index) emit = ")]";
          break;
        }
        case "/":
        case "/=": {
          // Division only where JS reads division: after a value. After `if (...)` or `}` it would be
          // the start of a regular expression.
          const value =
            prev &&
            (prev.kind === "number" ||
              (prev.kind === "name" && !KEYWORDS.has(prev.text)) ||
              prev.text === "]" ||
              (prev.text === ")" && !lastClose?.head));
          if (!value) at(`'${t.text}' where it would start a regular expression`);
          break;
        }
        case ".": {
          if (prev?.kind !== "name" || next?.kind !== "name") at("a '.' other than in name.property");
          break;
        }
      }
    }
    if (emit) {
      out.push(t.line > line ? "\n".repeat(t.line - line) : out.length ? " " : "");
      line = t.line;
      out.push(emit);
    }
  }
  if (open.length) fail(toks.at(-1)?.line ?? 1, `an unclosed '${open.at(-1)!.text}'`);
  return { code: out.join(""), names: new Set([...declared, ...exports]) };
}
