/**
 * Array literals: `{1,NULL,"a \"b\""}`, nested `{{1,2},{3,4}}`, bounds
 * `[0:1]={x,y}` and custom delimiters (box uses `;`). Same results as the
 * postgres.js driver's array codec.
 *
 * @module
 */

type Parse = (text: string) => unknown;

const OPEN = 123; // {
const CLOSE = 125; // }
const QUOTE = 34; // "
const BACKSLASH = 92; // \

/** One parse run: the text and the read position. */
class Cursor {
  at = 0;
  constructor(readonly text: string, readonly parse: Parse | undefined, readonly delim: number) {}
}

/**
 * Parses an array literal, applying `parse` to every non-null element
 * (elements stay strings without one). An unquoted `NULL` is null; a quoted
 * `"NULL"` is the string.
 *
 * @param text The literal as the server sends it.
 * @param parse The element parser.
 * @param delim The element type's delimiter (`typdelim`), `,` by default.
 *
 * @example
 * ```ts
 * import { parseArrayLiteral } from "./arrays.ts";
 * console.log(parseArrayLiteral('{1,NULL,"3"}', Number)); // [1, null, 3]
 * console.log(parseArrayLiteral("{(1,1),(0,0);(2,2),(1,1)}", undefined, ";")); // two boxes
 * ```
 */
export function parseArrayLiteral(text: string, parse?: (text: string) => unknown, delim = ","): unknown[] {
  const cursor = new Cursor(text, parse, delim.charCodeAt(0));
  if (text.charCodeAt(0) === 91 /* [ */) cursor.at = text.indexOf("=") + 1;
  return readArray(cursor);
}

function readArray(c: Cursor): unknown[] {
  const { text, parse, delim } = c;
  const length = text.length;
  const out: unknown[] = [];
  let i = c.at + 1; // past '{'
  while (i < length) {
    const code = text.charCodeAt(i);
    if (code === CLOSE) {
      c.at = i + 1;
      return out;
    }
    if (code === delim) {
      i++;
    } else if (code === OPEN) {
      c.at = i;
      out.push(readArray(c));
      i = c.at;
    } else if (code === QUOTE) {
      let value = "";
      let start = ++i;
      while (i < length) {
        const q = text.charCodeAt(i);
        if (q === QUOTE) break;
        if (q === BACKSLASH) {
          value += text.slice(start, i);
          start = i + 1;
          i += 2;
        } else {
          i++;
        }
      }
      value += text.slice(start, Math.min(i, length));
      i++; // past the closing quote
      out.push(parse === undefined ? value : parse(value));
    } else {
      const start = i;
      while (i < length) {
        const e = text.charCodeAt(i);
        if (e === delim || e === CLOSE) break;
        i++;
      }
      const raw = text.slice(start, i);
      out.push(raw === "NULL" ? null : parse === undefined ? raw : parse(raw));
    }
  }
  c.at = i;
  return out;
}

/**
 * Writes a JavaScript array as an array literal: the writer both drivers share (see
 * `../../param_text.ts`); elements without a serializer are written by `paramText()` (a plain object as
 * its JSON text, a Date as its ISO 8601 text, a Uint8Array as bytea hex), never `[object Object]`.
 *
 * @example
 * ```ts
 * import { serializeArrayLiteral } from "./arrays.ts";
 * console.log(serializeArrayLiteral([1, null, 'a"b'])); // {"1",NULL,"a\"b"}
 * ```
 */
export { serializeArrayLiteral } from "../../param_text.ts";
