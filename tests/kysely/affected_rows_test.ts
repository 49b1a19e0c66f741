/**
 * How the Kysely dialect sorts compiled queries (rows, status tag, RETURNING)
 * and parses status tags. Pure: Kysely's compiler, no server.
 */

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  CompiledQuery,
  DummyDriver,
  type Generated,
  Kysely,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
  sql,
} from "kysely";
import { affectedRowsOf, resultShapeOf } from "../../src/kysely/affected_rows.ts";

interface Database {
  person: { id: Generated<number>; name: string };
}

// Compiles only: a dummy driver never runs anything.
const db = new Kysely<Database>({
  dialect: {
    createAdapter: () => new PostgresAdapter(),
    createDriver: () => new DummyDriver(),
    createIntrospector: (k) => new PostgresIntrospector(k),
    createQueryCompiler: () => new PostgresQueryCompiler(),
  },
});

describe("Kysely dialect: result shapes", () => {
  it("resultShapeOf() sorts built INSERT / UPDATE / DELETE / MERGE by RETURNING, everything else as rows", () => {
    const cases: [CompiledQuery, string][] = [
      [db.selectFrom("person").selectAll().compile(), "rows"],
      [db.insertInto("person").values({ name: "a" }).compile(), "tag"],
      [db.insertInto("person").values({ name: "a" }).returning("id").compile(), "returning"],
      [db.updateTable("person").set({ name: "b" }).compile(), "tag"],
      [db.updateTable("person").set({ name: "b" }).returningAll().compile(), "returning"],
      [db.deleteFrom("person").compile(), "tag"],
      [db.deleteFrom("person").returning("id").compile(), "returning"],
      [
        db.mergeInto("person as t").using("person as s", "s.id", "t.id").whenMatched().thenDelete().compile(),
        "tag",
      ],
      [
        db.with("gone", (q) => q.deleteFrom("person").returning("id")).selectFrom("gone").selectAll()
          .compile(),
        "rows",
      ],
      [db.schema.createTable("x").addColumn("id", "integer").compile(), "rows"],
    ];
    for (const [query, shape] of cases) assert.equal(resultShapeOf(query), shape, query.sql);
  });

  it("resultShapeOf() sorts raw SQL by its first keyword after comments, and by the word RETURNING", () => {
    const cases: [string, string][] = [
      ["select 1", "rows"],
      ["  UPDATE person SET name = 'x'", "tag"],
      ["-- note\n/* block */ delete from person", "tag"],
      ["insert into person (name) values ('a') RETURNING id", "returning"],
      ["merge into person t using person s on s.id = t.id when matched then do nothing", "tag"],
      ["with gone as (delete from person returning id) select * from gone", "rows"],
      ["explain update person set name = 'x'", "rows"],
      ["", "rows"],
      ["updated_at", "rows"],
      ["update_log", "rows"],
    ];
    for (const [text, shape] of cases) assert.equal(resultShapeOf(CompiledQuery.raw(text)), shape, text);
    assert.equal(resultShapeOf(sql`update person set name = ${"x"}`.compile(db)), "tag");
  });

  it("affectedRowsOf() reads the count of INSERT / UPDATE / DELETE / MERGE tags only", () => {
    assert.equal(affectedRowsOf("INSERT 0 5"), 5n);
    assert.equal(affectedRowsOf("UPDATE 3"), 3n);
    assert.equal(affectedRowsOf("DELETE 0"), 0n);
    assert.equal(affectedRowsOf("MERGE 12345678901234567890"), 12345678901234567890n);
    assert.equal(affectedRowsOf("SELECT 3"), undefined);
    assert.equal(affectedRowsOf("COPY 3"), undefined);
    assert.equal(affectedRowsOf("CREATE TABLE"), undefined);
    assert.equal(affectedRowsOf("ROLLBACK"), undefined);
    assert.equal(affectedRowsOf(""), undefined);
  });
});
