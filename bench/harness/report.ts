/**
 * Turns the samples of a run into records (medians over repetitions, ratios to
 * "ours (default reset)"), a markdown report and the target checks.
 *
 * @module
 */

import { median, type Sample } from "./stats.ts";

/** One scenario × contender row of the JSON file. */
export interface ResultRecord {
  scenario: string;
  scenarioTitle: string;
  contender: string;
  label: string;
  api: string;
  /** Median over repetitions of operations per second. */
  opsPerSec: number;
  /** Median over repetitions of the per-repetition p50 / p99 latency, ms. */
  p50: number;
  p99: number;
  /** opsPerSec divided by that of "ours (default reset)" in the same scenario. */
  ratioToOurs: number;
  /** ops/s of each repetition, in run order. */
  runs: number[];
  /** Medians of scenario-specific figures, plus once-per-variant figures. */
  extra?: Record<string, number>;
  /** Set when the variant failed; the other fields are then NaN. */
  error?: string;
}

/** A target from the issue, checked against this run. */
export interface TargetCheck {
  scenario: string;
  target: string;
  value: number;
  threshold: string;
  met: boolean | null;
}

/** Median record of one variant's samples. */
export function aggregate(
  base: Omit<ResultRecord, "opsPerSec" | "p50" | "p99" | "ratioToOurs" | "runs" | "extra">,
  samples: Sample[],
  once: Record<string, number> | undefined,
): ResultRecord {
  const runs = samples.map((s) => s.ops / s.seconds);
  const extraKeys = new Set(samples.flatMap((s) => Object.keys(s.extra ?? {})));
  const extra: Record<string, number> = {};
  for (const k of extraKeys) extra[k] = median(samples.map((s) => s.extra?.[k] ?? Number.NaN));
  Object.assign(extra, once);
  return {
    ...base,
    opsPerSec: median(runs),
    p50: median(samples.map((s) => s.p50)),
    p99: median(samples.map((s) => s.p99)),
    ratioToOurs: Number.NaN,
    runs: runs.map((r) => Math.round(r)),
    extra: Object.keys(extra).length > 0 ? extra : undefined,
  };
}

/** Fills `ratioToOurs` within each scenario. */
export function addRatios(records: ResultRecord[]): void {
  for (const r of records) {
    const ours = records.find((o) => o.scenario === r.scenario && o.contender === "ours");
    r.ratioToOurs = ours ? r.opsPerSec / ours.opsPerSec : Number.NaN;
  }
}

function find(records: ResultRecord[], scenario: string, contender: string): ResultRecord | undefined {
  return records.find((r) => r.scenario === scenario && r.contender === contender && r.error === undefined);
}

/** Checks the issue's targets; a target whose rows are missing is reported with `met: null`. */
export function checkTargets(records: ResultRecord[], runtime: string): TargetCheck[] {
  const checks: TargetCheck[] = [];
  const ratio = (
    scenario: string,
    target: string,
    a: string,
    b: string,
    min: number,
    firstRep = false,
  ): void => {
    const x = find(records, scenario, a);
    const y = find(records, scenario, b);
    const value = !x || !y
      ? Number.NaN
      : firstRep
      ? (x.runs[0] ?? Number.NaN) / (y.runs[0] ?? Number.NaN)
      : x.opsPerSec / y.opsPerSec;
    checks.push({
      scenario,
      target,
      value,
      threshold: `≥ ${min}×`,
      met: Number.isNaN(value) ? null : value >= min,
    });
  };
  // The native engine (the default driver) against the postgres.js driver, and against postgres.js itself.
  ratio("S1", "ours (default reset) ÷ ours on the postgres.js driver", "ours", "ours-pgjs", 1.0);
  ratio("S2", "ours (default reset) ÷ ours on the postgres.js driver", "ours", "ours-pgjs", 1.0);
  ratio("S4", "ours (default reset) ÷ ours on the postgres.js driver", "ours", "ours-pgjs", 1.0);
  ratio("S1", "ours (default reset) ÷ postgres.js reserve()/release()", "ours", "postgresjs", 0.85);
  ratio("S1", "ours (default reset) ÷ asyncpg", "ours", "asyncpg", 3);
  ratio("S1", "ours (reset disabled) ÷ postgres.js reserve()/release()", "ours-noreset", "postgresjs", 1.5);
  if (runtime === "bun") {
    ratio("S1", "ours (reset disabled) ÷ Bun.sql reserve()", "ours-noreset", "bunsql", 1.0);
  }
  ratio("S4", "ours (default reset) ÷ postgres.js reserve() handler", "ours", "postgresjs", 0.9);
  ratio("S2", "ours (default reset) ÷ postgres.js sql`` one-shots", "ours", "postgresjs", 1.0);
  ratio("S4", "ours (default reset) ÷ postgres.js sql`` server", "ours", "postgresjs-direct", 1.0);
  // postgres.js's pooled one-shots slow down the longer a saturated pool runs (its Queue.remove scans an
  // ever-growing array), so the same targets on the first repetition, with a freshly warmed pool:
  const fresh = "first repetition only (postgres.js pool fresh)";
  ratio(
    "S2",
    `ours (default reset) ÷ postgres.js sql\`\` one-shots, ${fresh}`,
    "ours",
    "postgresjs",
    1.0,
    true,
  );
  ratio(
    "S4",
    `ours (default reset) ÷ postgres.js sql\`\` server, ${fresh}`,
    "ours",
    "postgresjs-direct",
    1.0,
    true,
  );
  // Issue 16, pipelined one-shots (each still followed by the session reset unless it is disabled), each
  // postgres.js target over the medians and, as the issue states them for a fresh pool, the first repetition.
  const issue16 = (scenario: string, target: string, a: string, b: string, min: number): void => {
    ratio(scenario, `issue 16: ${target}`, a, b, min);
    if (b.startsWith("postgresjs")) ratio(scenario, `issue 16: ${target}, ${fresh}`, a, b, min, true);
  };
  issue16("S2", "ours (default reset) ÷ postgres.js sql`` one-shots", "ours", "postgresjs", 1.5);
  issue16("S2", "ours (reset disabled) ÷ postgres.js sql`` one-shots", "ours-noreset", "postgresjs", 2.0);
  if (runtime === "bun") {
    issue16("S2", "ours (default reset) ÷ Bun.sql sql`` one-shots", "ours", "bunsql", 0.4);
  }
  issue16(
    "S4",
    "ours pool.fetchRow() handler ÷ postgres.js sql`` handler",
    "ours-direct",
    "postgresjs-direct",
    1.2,
  );
  issue16("S6", "ours (default reset) ÷ postgres.js sql`` pages of 20", "ours", "postgresjs", 1.2);
  const s1 = find(records, "S1", "ours");
  const s5 = find(records, "S5", "ours");
  const perConn = s1 && s5 ? (s5.opsPerSec / 100) / (s1.opsPerSec / 10) : Number.NaN;
  checks.push({
    scenario: "S5",
    target: "ours: per-connection rate ÷ S1's per-connection rate",
    value: perConn,
    threshold: "≥ 0.9×",
    met: Number.isNaN(perConn) ? null : perConn >= 0.9,
  });
  const total = s1 && s5 ? s5.opsPerSec / s1.opsPerSec : Number.NaN;
  checks.push({
    scenario: "S5",
    target: "ours: total throughput ÷ S1's (informative: CPU-bound machine)",
    value: total,
    threshold: "≥ 0.9×",
    met: Number.isNaN(total) ? null : total >= 0.9,
  });
  const mom = s5?.extra?.maxOverMean ?? Number.NaN;
  checks.push({
    scenario: "S5",
    target: "ours: max acquire wait ÷ mean",
    value: mom,
    threshold: "≤ 3×",
    met: Number.isNaN(mom) ? null : mom <= 3,
  });
  const heapOurs = s5?.extra?.heapPerIdleConnection ?? Number.NaN;
  const heapPgjs = find(records, "S5", "postgresjs")?.extra?.heapPerIdleConnection ?? Number.NaN;
  const heapRatio = heapOurs / heapPgjs;
  checks.push({
    scenario: "S5",
    target:
      "ours: heap per idle connection ÷ postgres.js's (S5's single sample; bench/heap_idle.ts measures it properly)",
    value: heapRatio,
    threshold: "≤ 1×",
    met: Number.isNaN(heapRatio) ? null : heapRatio <= 1,
  });
  const starved = s5?.extra?.starved ?? Number.NaN;
  checks.push({
    scenario: "S5",
    target: "ours: waiters never served",
    value: starved,
    threshold: "= 0",
    met: Number.isNaN(starved) ? null : starved === 0,
  });
  return checks;
}

function fmt(n: number | null | undefined, digits = 0): string {
  // null: a NaN that went through JSON (a target without its rows, read back from bench/results/*.json)
  if (n === undefined || n === null || Number.isNaN(n)) return "–";
  return n.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function ms(n: number | undefined): string {
  if (n === undefined || Number.isNaN(n)) return "–";
  return n < 10 ? n.toFixed(2) : n < 100 ? n.toFixed(1) : n.toFixed(0);
}

/** The markdown tables (one per scenario) and the target list. */
export function markdown(
  title: string,
  scenarios: { id: string; title: string; description: string }[],
  records: ResultRecord[],
  targets: TargetCheck[],
): string {
  const out: string[] = [`### ${title}`, ""];
  for (const s of scenarios) {
    const rows = records.filter((r) => r.scenario === s.id);
    if (rows.length === 0) continue;
    out.push(`**${s.id} ${s.title}** — ${s.description}`, "");
    const isS4 = s.id === "S4";
    const isS5 = s.id === "S5";
    const head = ["contender", "API", isS4 ? "req/s" : "ops/s", "vs ours", "p50 ms", "p99 ms", "CPU µs/op"];
    if (isS4) head.push("errors");
    if (isS5) {
      head.push(
        "wait p50",
        "wait p99",
        "wait max",
        "max/mean",
        "min ops/task",
        "heap/idle conn",
        "heap/waiter",
      );
    }
    out.push(`| ${head.join(" | ")} |`, `|${head.map((_, i) => (i < 2 ? "---" : "--:")).join("|")}|`);
    for (const r of rows) {
      if (r.error !== undefined) {
        out.push(`| ${r.label} | ${r.api} | failed: ${r.error.replaceAll("|", "/").slice(0, 80)} |`);
        continue;
      }
      const cells = [
        r.label,
        r.api,
        fmt(r.opsPerSec),
        `${fmt(r.ratioToOurs, 2)}×`,
        ms(r.p50),
        ms(r.p99),
        fmt(r.extra?.cpuUsPerOp, 1),
      ];
      if (isS4) cells.push(fmt(r.extra?.errors));
      if (isS5) {
        const e = r.extra ?? {};
        const bytes = (b: number | undefined): string => (b === undefined ? "–" : `${fmt(b)} B`);
        cells.push(
          ms(e.waitP50),
          ms(e.waitP99),
          ms(e.waitMax),
          fmt(e.maxOverMean, 2),
          fmt(e.minOpsPerWaiter),
          bytes(e.heapPerIdleConnection),
          bytes(e.heapPerWaiter),
        );
      }
      out.push(`| ${cells.join(" | ")} |`);
    }
    out.push("");
  }
  out.push("**Targets**", "", "| scenario | target | value | threshold | met |", "|---|---|--:|--:|---|");
  for (const t of targets) {
    const v = t.target.includes("never served") ? fmt(t.value) : `${fmt(t.value, 2)}×`;
    out.push(
      `| ${t.scenario} | ${t.target} | ${v} | ${t.threshold} | ${
        t.met === null ? "n/a" : t.met ? "yes" : "**no**"
      } |`,
    );
  }
  return out.join("\n");
}
