import { inflateRawSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { decodeHash, encodeHash } from "../../playground/link.js";

/** The playground's deep link: the cell's text, deflated (raw DEFLATE, RFC 1951) and base64url, in the hash. */
describe("the playground's link", () => {
  const text =
    "cell c {\n  input x[D]\n  state h[H]\n  h' = tanh(h + x)  # ünïcode, \u{1F600}\n  output h'\n}\n";

  it("is raw DEFLATE of the text that zlib inflates, and round-trips", async () => {
    const hash = await encodeHash({ file: "lstm.cell", text });
    const params = new URLSearchParams(hash.slice(1));
    expect(params.get("f")).toBe("lstm.cell");
    const z = params.get("z")!;
    expect(z).toMatch(/^[A-Za-z0-9_-]+$/); // base64url, unpadded: nothing to escape in a URL
    expect(inflateRawSync(Buffer.from(z, "base64url")).toString("utf8")).toBe(text);
    expect(await decodeHash(hash)).toEqual({ file: "lstm.cell", text });
  });

  it("reads plain base64url too, and ignores a damaged or missing one", async () => {
    const t = Buffer.from(text).toString("base64url");
    expect(await decodeHash(`#f=a.cell&t=${t}`)).toEqual({ file: "a.cell", text });
    expect(await decodeHash("#f=a.cell&z=AAAA")).toBeUndefined();
    expect(await decodeHash("")).toBeUndefined();
    // A file name that is not a plain .cell name is not used (it is shown and resolves imports).
    expect((await decodeHash(`#f=../../etc/passwd&t=${t}`))?.file).toBe("playground.cell");
  });
});
