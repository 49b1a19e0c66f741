// scratch: S2-like one-shot comparison (not committed)
import process from "node:process";
import postgres from "postgres";
import { createPool } from "../mod.ts";
const dsn = process.env.DATABASE_URL!;
const MS = Number(process.env.MS ?? 3000);
async function loop(tasks: number, fn: (i: number) => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  let n = 0;
  await Promise.all(Array.from({ length: tasks }, async (_, k) => {
    while (performance.now() - t0 < MS) {
      await fn(k);
      n++;
    }
  }));
  return n / ((performance.now() - t0) / 1000);
}
const variants: [
  string,
  () => Promise<{ run: (i: number) => Promise<unknown>; close: () => Promise<void> }>,
][] = [
  ["ours", async () => {
    const p = await createPool(dsn, { maxSize: 10 });
    return { run: (i) => p.fetchVal("SELECT $1::int", [i]), close: () => p.close() };
  }],
  ["ours-null", async () => {
    const p = await createPool(dsn, { maxSize: 10, reset: null });
    return { run: (i) => p.fetchVal("SELECT $1::int", [i]), close: () => p.close() };
  }],
  ["ours-d1", async () => {
    const p = await createPool(dsn, { maxSize: 10, pipelineDepth: 1 });
    return { run: (i) => p.fetchVal("SELECT $1::int", [i]), close: () => p.close() };
  }],
  ["pgjs", async () => {
    const sql = postgres(dsn, { max: 10 });
    return { run: (i) => sql`SELECT ${i}::int`, close: () => sql.end() };
  }],
];
const only = process.env.ONLY?.split(",");
for (let rep = 0; rep < Number(process.env.REPS ?? 2); rep++) {
  for (const [name, open] of variants) {
    if (only && !only.includes(name)) continue;
    const c = await open();
    await loop(100, c.run); // warm (MS)
    const r = await loop(100, c.run);
    console.log(rep, name, Math.round(r));
    await c.close();
  }
}
