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

export function lineCol(text: string, offset: number): LineCol {
  let line = 1;
  let lineStart = 0;
  const end = Math.min(offset, text.length);
  for (let i = 0; i < end; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, col: end - lineStart + 1 };
}
