/**
 * Which statement texts a connection runs as named prepared statements.
 *
 * A named statement stays prepared on the server, and in postgres.js's
 * per-connection cache, for the life of the connection: postgres.js never
 * evicts one. With statements built at run time (an `IN` list per length, a
 * literal in the text) both would grow without bound. So each connection
 * prepares at most `capacity` texts (asyncpg's `statement_cache_size`, 100 by
 * default); any other text runs as an unnamed statement, parsed per run.
 *
 * Only a text that comes back earns a place: a single run is prepared when
 * its text was seen among the last few thousand unprepared ones (or it is part
 * of a batch), so texts used once do not fill the cache. Those sightings are
 * kept as 32-bit hashes, so they cost a few bytes each whatever the length of
 * the text; a collision only prepares a text one run early. Texts longer than {@linkcode MAX_CACHEABLE_LENGTH} are
 * never prepared (asyncpg's `max_cacheable_statement_size`). Places are never
 * given back, because postgres.js cannot forget a statement.
 *
 * @module
 */

/** Statement texts longer than this (in UTF-16 code units) are never prepared. */
export const MAX_CACHEABLE_LENGTH = 15 * 1024;

/** The default number of prepared texts per connection. */
export const DEFAULT_STATEMENT_CACHE_SIZE = 100;

/**
 * Decides, per statement text, whether to prepare it; see the module docs.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { StatementCache } from "./statement_cache.ts";
 * const cache = new StatementCache(100);
 * assert.equal(cache.admit("SELECT $1::int", 1), false); // first sighting: runs unnamed
 * assert.equal(cache.admit("SELECT $1::int", 1), true); // it came back: prepared from now on
 * ```
 */
export class StatementCache {
  readonly #capacity: number;
  /** The prepared texts (made at the first; an idle connection holds no empty sets). */
  #prepared: Set<string> | undefined;
  /** Hashes of texts run unprepared; cleared when it holds {@linkcode SEEN_LIMIT} of them. */
  #seen: Set<number> | undefined;

  /** @param capacity How many texts to prepare at most; 0 prepares none. */
  constructor(capacity: number) {
    this.#capacity = capacity;
  }

  /** How many texts are prepared. */
  get size(): number {
    return this.#prepared?.size ?? 0;
  }

  /**
   * Whether to run `sql` as a named prepared statement now; `runs` is how many
   * times this call runs it (more than one: a batch, worth preparing at once).
   */
  admit(sql: string, runs: number): boolean {
    if (this.#prepared?.has(sql) === true) return true;
    if (this.size >= this.#capacity || sql.length > MAX_CACHEABLE_LENGTH) return false;
    const hash = runs > 1 ? 0 : hashText(sql);
    if (runs > 1 || this.#seen?.delete(hash) === true) {
      (this.#prepared ??= new Set()).add(sql);
      return true;
    }
    if (this.#seen === undefined || this.#seen.size >= SEEN_LIMIT) this.#seen = new Set();
    this.#seen.add(hash);
    return false;
  }
}

/** How many sightings of unprepared texts a connection remembers. */
const SEEN_LIMIT = 4096;

/** FNV-1a over the UTF-16 code units of `text`. */
function hashText(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);
  return hash >>> 0;
}
