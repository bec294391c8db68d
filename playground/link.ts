// The deep link: the cell's text (and the file name it is checked as) in the URL's hash, deflated and
// base64url-encoded, so that a variant can be shared as a link. Without CompressionStream, plain base64url.

export interface Shared {
  readonly file: string;
  readonly text: string;
}

function toBase64Url(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function fromBase64Url(text: string): Uint8Array {
  const s = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
  return Uint8Array.from(s, (c) => c.charCodeAt(0));
}

async function through(bytes: Uint8Array, stream: GenericTransformStream): Promise<Uint8Array> {
  const out = new Blob([bytes as BlobPart]).stream().pipeThrough(stream);
  return new Uint8Array(await new Response(out).arrayBuffer());
}

/** `#f=FILE&z=DEFLATED` (or `&t=PLAIN` where the browser cannot compress). */
export async function encodeHash(s: Shared): Promise<string> {
  const bytes = new TextEncoder().encode(s.text);
  const params = new URLSearchParams({ f: s.file });
  if (typeof CompressionStream === "function")
    params.set("z", toBase64Url(await through(bytes, new CompressionStream("deflate-raw"))));
  else params.set("t", toBase64Url(bytes));
  return "#" + params.toString();
}

/** The shared cell of a hash, or undefined when the hash holds none (or a damaged one). */
export async function decodeHash(hash: string): Promise<Shared | undefined> {
  const params = new URLSearchParams(hash.replace(/^#/, ""));
  const file = params.get("f") ?? "playground.cell";
  try {
    const z = params.get("z");
    const t = params.get("t");
    const bytes =
      z !== null
        ? await through(fromBase64Url(z), new DecompressionStream("deflate-raw"))
        : t !== null
          ? fromBase64Url(t)
          : undefined;
    if (!bytes) return undefined;
    return {
      file: /^[\w.-]+\.cell$/.test(file) ? file : "playground.cell",
      text: new TextDecoder().decode(bytes),
    };
  } catch {
    return undefined;
  }
}
