/** An indent-aware line writer for generated code. */
export class Writer {
  private readonly lines: string[] = [];
  private depth = 0;
  line(s = ""): this {
    this.lines.push(s ? "  ".repeat(this.depth) + s : "");
    return this;
  }
  open(s: string): this {
    this.line(s);
    this.depth++;
    return this;
  }
  close(s = "}"): this {
    this.depth--;
    return this.line(s);
  }
  toString(): string {
    return this.lines.join("\n") + "\n";
  }
}
