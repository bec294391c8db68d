/** A half-open byte range [start, end) in one source file. */
export interface Span {
  readonly file: string;
  readonly start: number;
  readonly end: number;
}

/** The registry of source texts, so that diagnostics can print the line a span points into. */
export class SourceMap {
  private readonly texts = new Map<string, string>();
  add(file: string, text: string): void {
    this.texts.set(file, text);
  }
  get(file: string): string | undefined {
    return this.texts.get(file);
  }
}

export interface LineCol {
  line: number; // 1-based
  col: number; // 1-based
}

/** Line breaks are `\n`, `\r\n` or a lone `\r` (old Mac files), so every editor's line numbers agree. */
export function lineCol(text: string, offset: number): LineCol {
  let line = 1;
  let lineStart = 0;
  const end = Math.min(offset, text.length);
  for (let i = 0; i < end; i++) {
    const ch = text.charCodeAt(i);
    if (ch === 10 || (ch === 13 && text.charCodeAt(i + 1) !== 10)) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, col: end - lineStart + 1 };
}

/** The [start, end) offsets of the line holding `offset`, without its line break. */
export function lineBounds(text: string, offset: number): { start: number; end: number } {
  let start = Math.min(offset, text.length);
  while (start > 0 && text[start - 1] !== "\n" && text[start - 1] !== "\r") start--;
  let end = start;
  while (end < text.length && text[end] !== "\n" && text[end] !== "\r") end++;
  return { start, end };
}
