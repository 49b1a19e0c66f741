/**
 * Turns `SELECT $1::int` into the template-strings array a tagged template
 * `sql\`SELECT ${x}::int\`` would pass, so postgres.js and Bun.sql run the
 * harness's statements through their normal (prepared) tagged-template path.
 *
 * @module
 */

const cache = new Map<string, TemplateStringsArray>();

/** The cached template-strings array for `sql`; placeholders must be `$1`, `$2`, … in order. */
export function templateFor(sql: string): TemplateStringsArray {
  let strings = cache.get(sql);
  if (strings !== undefined) return strings;
  const parts: string[] = [];
  let last = 0;
  let expected = 1;
  for (const m of sql.matchAll(/\$(\d+)/g)) {
    if (Number(m[1]) !== expected++) throw new Error(`Placeholders must be in order in: ${sql}`);
    parts.push(sql.slice(last, m.index));
    last = m.index! + m[0].length;
  }
  parts.push(sql.slice(last));
  const frozen = Object.freeze([...parts]);
  strings = Object.defineProperty([...parts], "raw", {
    value: frozen,
    enumerable: false,
  }) as unknown as TemplateStringsArray;
  Object.freeze(strings);
  cache.set(sql, strings);
  return strings;
}
