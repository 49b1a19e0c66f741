/**
 * Summarizes a V8/JSC `.cpuprofile` (from `deno run --cpu-prof` or
 * `bun --cpu-prof`): top functions by self time, and self time per source
 * area (our src/, postgres.js, the benchmark, runtime internals, idle/GC).
 *
 *   deno run -A bench/harness/profile_summary.ts <file.cpuprofile> [top=25]
 *
 * @module
 */

import * as fs from "node:fs";
import process from "node:process";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

interface Profile {
  nodes: ProfileNode[];
  samples?: number[];
  timeDeltas?: number[];
  startTime: number;
  endTime: number;
}

/** Where a frame's code lives, for the per-area totals. */
export function areaOf(url: string, name: string): string {
  if (name === "(idle)" || name === "(program)" || name === "(garbage collector)" || name === "(root)") {
    return name;
  }
  if (url.includes("/node_modules/postgres/")) return "postgres.js";
  if (url.includes("/node_modules/pg")) return "pg";
  if (url.includes("/src/drivers/")) return "src/drivers (driver)";
  if (url.includes("/src/runtime/")) return "src/runtime (adapter)";
  if (url.includes("/src/")) return "src (pool core)";
  if (url.includes("/bench/")) return "bench harness";
  if (url === "") return "native/builtin";
  return "runtime internals";
}

/** Self time (ms) per function and per area. */
export function summarize(profile: Profile): {
  totalMs: number;
  functions: { name: string; where: string; area: string; ms: number }[];
  areas: { area: string; ms: number }[];
} {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  if (profile.samples && profile.timeDeltas) {
    for (let i = 0; i < profile.samples.length; i++) {
      const id = profile.samples[i]!;
      self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i + 1] ?? profile.timeDeltas[i] ?? 0) / 1000);
    }
  } else {
    const total = (profile.endTime - profile.startTime) / 1000;
    const hits = profile.nodes.reduce((a, n) => a + (n.hitCount ?? 0), 0) || 1;
    for (const n of profile.nodes) self.set(n.id, ((n.hitCount ?? 0) / hits) * total);
  }
  const fn = new Map<string, { name: string; where: string; area: string; ms: number }>();
  const areas = new Map<string, number>();
  let totalMs = 0;
  for (const [id, ms] of self) {
    const node = byId.get(id);
    if (!node) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    const name = functionName || "(anonymous)";
    const file = url.includes("/node_modules/")
      ? url.replace(/^.*\/node_modules\//, "npm:")
      : url.replace(/^file:\/\//, "").replace(/^.*\/(src|bench|tests)\//, "$1/");
    const where = url ? `${file}:${lineNumber + 1}` : "";
    const key = `${name}@${where}`;
    const area = areaOf(url, name);
    const entry = fn.get(key) ?? { name, where, area, ms: 0 };
    entry.ms += ms;
    fn.set(key, entry);
    areas.set(area, (areas.get(area) ?? 0) + ms);
    totalMs += ms;
  }
  return {
    totalMs,
    functions: [...fn.values()].sort((a, b) => b.ms - a.ms),
    areas: [...areas.entries()].map(([area, ms]) => ({ area, ms })).sort((a, b) => b.ms - a.ms),
  };
}

if ((import.meta as ImportMeta & { main?: boolean }).main) {
  const file = process.argv[2];
  if (!file) throw new Error("usage: profile_summary.ts <file.cpuprofile> [top]");
  const top = Number(process.argv[3] ?? 25);
  const s = summarize(JSON.parse(fs.readFileSync(file, "utf8")) as Profile);
  const pct = (ms: number): string => `${((100 * ms) / s.totalMs).toFixed(1)}%`;
  console.log(`Total sampled: ${s.totalMs.toFixed(0)} ms\n\n| area | self | share |\n|---|--:|--:|`);
  for (const a of s.areas) console.log(`| ${a.area} | ${a.ms.toFixed(0)} ms | ${pct(a.ms)} |`);
  console.log(`\n| function | where | self | share |\n|---|---|--:|--:|`);
  for (const f of s.functions.slice(0, top)) {
    console.log(`| ${f.name} | ${f.where} | ${f.ms.toFixed(0)} ms | ${pct(f.ms)} |`);
  }
}
