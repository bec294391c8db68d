/**
 * Offsets in a text and the positions editors use: 0-based line and 0-based column in UTF-16 code units
 * (the Language Server Protocol's default, and JavaScript's string indices). Line breaks are `\n`, `\r\n`
 * or a lone `\r`, as in diag/span.ts, so that an editor's lines and the CLI's agree.
 */
export interface Position {
  readonly line: number;
  readonly character: number;
}

export class LineIndex {
  /** The offset where each line starts. */
  private readonly starts: number[] = [0];

  constructor(readonly text: string) {
    for (let i = 0; i < text.length; i++) {
      const ch = text.charCodeAt(i);
      if (ch === 10 || (ch === 13 && text.charCodeAt(i + 1) !== 10)) this.starts.push(i + 1);
    }
  }

  get lineCount(): number {
    return this.starts.length;
  }

  position(offset: number): Position {
    const at = Math.max(0, Math.min(offset, this.text.length));
    let lo = 0;
    let hi = this.starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.starts[mid]! <= at) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo, character: at - this.starts[lo]! };
  }

  /** A position past the end of its line is the line's end (before its line break). */
  offset(p: Position): number {
    if (p.line < 0) return 0;
    if (p.line >= this.starts.length) return this.text.length;
    const start = this.starts[p.line]!;
    let end = p.line + 1 < this.starts.length ? this.starts[p.line + 1]! : this.text.length;
    while (end > start && (this.text[end - 1] === "\n" || this.text[end - 1] === "\r")) end--;
    return Math.min(start + Math.max(0, p.character), end);
  }
}
