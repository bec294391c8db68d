import { expect } from "vitest";

/** Width and height of an SVG's root element. */
export function svgSize(svg: string): [number, number] {
  const m = /^<svg[^>]*\swidth="(\d+(?:\.\d+)?)"[^>]*\sheight="(\d+(?:\.\d+)?)"/.exec(svg);
  if (!m) throw new Error("not an SVG with a size");
  return [Number(m[1]), Number(m[2])];
}

/** Width and height from a PNG's IHDR chunk, after checking the signature. */
export function pngSize(png: Uint8Array): [number, number] {
  expect([...png.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  expect(new TextDecoder().decode(png.subarray(12, 16))).toBe("IHDR");
  const v = new DataView(png.buffer, png.byteOffset, png.byteLength);
  return [v.getUint32(16), v.getUint32(20)];
}

/** The vertices of each path of a mark type ("line mark", "area mark"), as vega draws them. */
export function markPaths(svg: string, role: string): number[] {
  const re = new RegExp(`aria-roledescription="${role}" d="([^"]*)"`, "g");
  return [...svg.matchAll(re)].map((m) => (m[1]!.match(/[ML]/g) ?? []).length);
}
