/**
 * bytea codec, hex format. Values come back as node `Buffer`s, as postgres.js
 * returns them (a `Uint8Array` subclass; users call `.toString("hex")` on them).
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { serializeByteaParam } from "../../param_text.ts";

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
 * byte; a string as its UTF-8 bytes; an array as its numbers, each an
 * integer 0-255 (anything else throws TypeError rather than wrap to a byte).
 * The rule both drivers share: see `../../param_text.ts`.
 *
 * @example
 * ```ts
 * import { serializeBytea } from "./bytea.ts";
 * console.log(serializeBytea(new Uint8Array([10, 255]))); // \x0aff
 * ```
 */
export const serializeBytea: (value: unknown) => string = serializeByteaParam;
