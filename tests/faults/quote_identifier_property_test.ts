/**
 * Property-based tests (fast-check) of `quoteIdentifier` (mod.ts): arbitrary
 * non-NUL names round-trip through a real CREATE TABLE / INSERT / SELECT, and
 * the pure quoting is reversible; empty names and names with NUL are refused
 * with InterfaceError INVALID_ARGUMENT.
 */

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { connect, type Connection, InterfaceError, quoteIdentifier } from "../../mod.ts";
import { getTestServer } from "../support/pg_server.ts";

/** PostgreSQL keeps identifiers up to NAMEDATALEN - 1 = 63 bytes. */
const MAX_BYTES = 63;
const utf8 = new TextEncoder();

const identifier = fc.string({ unit: "binary", minLength: 1, maxLength: 24 })
  .filter((s) => !s.includes("\0") && s.isWellFormed() && utf8.encode(s).length <= MAX_BYTES);
const tricky = fc.constantFrom(
  '"',
  '""',
  'a"b',
  " ",
  "select",
  "Mixed Case",
  "ü",
  "😀",
  "$1",
  "a;b",
  "--",
  "\\",
  "'",
);

let con: Connection;

describe("quoteIdentifier properties", { timeout: 120_000 }, () => {
  before(async () => {
    con = await connect((await getTestServer()).dsn);
  });

  after(async () => {
    await con.close();
  });

  it("quoting is reversible: strip the outer quotes, undouble the inner ones, get the name back", () => {
    fc.assert(
      fc.property(fc.oneof(identifier, tricky), (name) => {
        const q = quoteIdentifier(name);
        assert.ok(q.startsWith('"') && q.endsWith('"'));
        const inner = q.slice(1, -1);
        assert.ok(!inner.replaceAll('""', "").includes('"'), "every inner quote is doubled");
        assert.equal(inner.replaceAll('""', '"'), name);
      }),
      { numRuns: 1000 },
    );
  });

  it("empty names and names containing NUL are refused with INVALID_ARGUMENT", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 8 }), fc.string({ maxLength: 8 }), (a, b) => {
        assert.throws(
          () => quoteIdentifier(`${a}\0${b}`),
          (e: unknown) => e instanceof InterfaceError && e.code === "INVALID_ARGUMENT",
        );
      }),
      { numRuns: 200 },
    );
    assert.throws(
      () => quoteIdentifier(""),
      (e: unknown) => e instanceof InterfaceError && e.code === "INVALID_ARGUMENT",
    );
  });

  it(
    "arbitrary non-NUL names round-trip through a real CREATE TABLE, INSERT and SELECT",
    { timeout: 90_000 },
    async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.oneof(identifier, tricky),
          fc.oneof(identifier, tricky),
          async (table, column) => {
            const t = quoteIdentifier(table);
            const c = quoteIdentifier(column);
            await con.execute(`CREATE TEMP TABLE ${t} (${c} int)`);
            try {
              await con.execute(`INSERT INTO ${t} (${c}) VALUES ($1)`, [42]);
              const rows = await con.fetch(`SELECT ${c} FROM ${t}`);
              assert.deepEqual(rows, [{ [column]: 42 }], "the column comes back under its own name");
              const found = await con.fetchVal(
                "SELECT count(*)::int FROM pg_class WHERE relname = $1 AND relpersistence = 't'",
                [table],
              );
              assert.equal(found, 1, "the table exists under its own name");
              const att = await con.fetchVal(
                "SELECT count(*)::int FROM pg_attribute a JOIN pg_class r ON r.oid = a.attrelid " +
                  "WHERE r.relname = $1 AND r.relpersistence = 't' AND a.attname = $2",
                [table, column],
              );
              assert.equal(att, 1, "the column exists under its own name");
            } finally {
              await con.execute(`DROP TABLE ${t}`);
            }
          },
        ),
        { numRuns: 150 },
      );
    },
  );
});
