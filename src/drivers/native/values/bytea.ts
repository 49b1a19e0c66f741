/**
 * bytea codec, hex format. Values come back as node `Buffer`s, as postgres.js
 * returns them (a `Uint8Array` subclass; users call `.toString("hex")` on them).
 *
 * @module
 */
import { Buffer } from "node:buffer";

/**
 * Parses bytea hex text (`\x0aff`) to a Buffer.
 *
 * @example
 * ```ts
 * import { parseBytea } from "./bytea.ts";
 * console.log([...parseBytea("\\x0aff")]); // [10, 255]
 * ```
 */
export function parseBytea(text: string): Buffer {
  return Buffer.from(text.slice(2), "hex");
}

/**
 * Writes a bytea parameter in hex format. A Uint8Array is written byte for
 * byte; a string as its UTF-8 bytes; an array as its numbers (`Buffer.from`).
 *
 * @example
 * ```ts
 * import { serializeBytea } from "./bytea.ts";
 * console.log(serializeBytea(new Uint8Array([10, 255]))); // \x0aff
 * ```
 */
export function serializeBytea(value: unknown): string {
  return "\\x" + Buffer.from(value as Uint8Array).toString("hex");
}
