/**
 * Hand-written SVG chart of the results: for each runtime and scenario, one
 * horizontal bar per contender showing its throughput relative to ours
 * (default reset) = 1.0. Reads bench/results/<runtime>.json, writes
 * bench/results/chart.svg. Run on its own: `deno run -A bench/harness/chart.ts`.
 *
 * @module
 */

import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import type { ResultRecord } from "./report.ts";

/** The parts of a results file the chart uses. */
export interface ChartInput {
  runtime: string;
  runtimeVersion: string;
  quick: boolean;
  records: ResultRecord[];
}

/** bench/results/. */
export const RESULTS_DIR: string = fileURLToPath(new URL("../results/", import.meta.url));

const COLORS: Record<string, string> = {
  "ours": "#1f6feb",
  "ours-noreset": "#58a6ff",
  "ours-direct": "#0a3069",
  "ours-noreset-direct": "#218bff",
  "postgresjs": "#d9822b",
  "postgresjs-direct": "#f0b45a",
  "bunsql": "#8957e5",
  "bunsql-direct": "#b392f0",
  "pg": "#2da44e",
  "asyncpg": "#bf3989",
  "pgbench": "#6e7781",
  "pgbench-reset": "#9ea7b3",
};

function finite(v: unknown): v is number {
  return typeof v === "number" && Number.isFinite(v);
}

function esc(s: string): string {
  return s.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;").replaceAll('"', "&quot;");
}

/** Renders the chart for the given runs (one panel each). */
export function renderChart(inputs: ChartInput[]): string {
  const LABEL_W = 330;
  const PLOT_W = 440;
  const VALUE_W = 170;
  const ROW_H = 18;
  const BAR_H = 13;
  const HEAD_H = 24;
  const PANEL_HEAD_H = 34;
  const PAD = 16;
  const width = PAD * 2 + LABEL_W + PLOT_W + VALUE_W;
  const parts: string[] = [];
  let y = PAD;
  const all = inputs.flatMap((i) => i.records).filter((r) => finite(r.ratioToOurs));
  // pgbench (C, no pool) is far ahead; its bars are cut at the axis end so the pools stay readable.
  const pools = all.filter((r) => !r.contender.startsWith("pgbench")).map((r) => r.ratioToOurs);
  const maxRatio = Math.max(1.5, Math.ceil(Math.max(...pools, 1) * 2) / 2);
  const x0 = PAD + LABEL_W;
  const scale = PLOT_W / maxRatio;
  parts.push(
    `<text x="${PAD}" y="${y + 14}" class="title">Throughput relative to ours (default reset) = 1.0, ` +
      `same runtime, same run; median of repetitions</text>`,
  );
  y += 28;
  for (const input of inputs) {
    const name = input.runtime === "bun" ? "Bun" : input.runtime === "deno" ? "Deno" : input.runtime;
    parts.push(
      `<text x="${PAD}" y="${y + 20}" class="panel">${esc(`${name} ${input.runtimeVersion}`)}${
        input.quick ? " (--quick run)" : ""
      }</text>`,
    );
    y += PANEL_HEAD_H;
    const scenarios = [...new Set(input.records.map((r) => r.scenario))];
    for (const s of scenarios) {
      const rows = input.records.filter((r) => r.scenario === s);
      parts.push(
        `<text x="${PAD}" y="${y + 16}" class="scenario">${esc(`${s} ${rows[0]!.scenarioTitle}`)}</text>`,
      );
      const top = y + HEAD_H - 4;
      y += HEAD_H;
      for (const r of rows) {
        const label = `${r.label} — ${r.api}`;
        parts.push(`<text x="${x0 - 8}" y="${y + BAR_H - 2}" class="label">${esc(label)}</text>`);
        if (r.error !== undefined || !finite(r.ratioToOurs)) {
          parts.push(`<text x="${x0 + 4}" y="${y + BAR_H - 2}" class="value">failed</text>`);
        } else {
          const clipped = r.ratioToOurs > maxRatio;
          const w = Math.max(1, Math.min(r.ratioToOurs, maxRatio) * scale);
          const color = COLORS[r.contender] ?? "#999";
          parts.push(`<rect x="${x0}" y="${y}" width="${w.toFixed(1)}" height="${BAR_H}" fill="${color}"/>`);
          if (clipped) {
            const xc = x0 + w - 14;
            parts.push(
              `<path d="M${xc} ${y + BAR_H} l5 ${-BAR_H} M${xc + 5} ${y + BAR_H} l5 ${-BAR_H}" class="cut"/>`,
            );
          }
          const unit = s === "S4" ? "req/s" : s === "S3" ? "tx/s" : "ops/s";
          parts.push(
            `<text x="${(x0 + w + 4).toFixed(1)}" y="${y + BAR_H - 2}" class="value">${
              r.ratioToOurs.toFixed(2)
            }× ` +
              `(${Math.round(r.opsPerSec).toLocaleString("en-US")} ${unit})</text>`,
          );
        }
        y += ROW_H;
      }
      const one = x0 + scale;
      parts.push(`<line x1="${one}" y1="${top}" x2="${one}" y2="${y}" class="one"/>`);
      y += 6;
    }
    y += 10;
  }
  const ticks: string[] = [];
  for (let t = 0; t <= maxRatio + 1e-9; t += maxRatio > 3 ? 1 : 0.5) {
    const x = x0 + t * scale;
    ticks.push(`<line x1="${x}" y1="${y}" x2="${x}" y2="${y + 4}" class="axis"/>`);
    ticks.push(`<text x="${x}" y="${y + 16}" class="tick">${t}×</text>`);
  }
  y += 24;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${y + PAD}" viewBox="0 0 ${width} ${
      y + PAD
    }" ` +
    `font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif">`,
    "<style>",
    ".title{font-size:14px;font-weight:600} .panel{font-size:15px;font-weight:700} " +
    ".scenario{font-size:12px;font-weight:600;fill:#333} .label{font-size:11px;text-anchor:end;fill:#333} " +
    ".value{font-size:11px;fill:#333} .tick{font-size:10px;text-anchor:middle;fill:#555} " +
    ".one{stroke:#444;stroke-dasharray:3 3} .axis{stroke:#555} .cut{stroke:#fff;stroke-width:2.5}",
    "</style>",
    `<rect width="100%" height="100%" fill="#fff"/>`,
    ...parts,
    ...ticks,
    "</svg>",
    "",
  ].join("\n");
}

/** Reads every results file present and (re)writes chart.svg; returns its path. */
export function writeChart(): string {
  const inputs: ChartInput[] = [];
  for (const rt of ["deno", "bun"]) {
    const file = path.join(RESULTS_DIR, `${rt}.json`);
    if (fs.existsSync(file)) inputs.push(JSON.parse(fs.readFileSync(file, "utf8")) as ChartInput);
  }
  const out = path.join(RESULTS_DIR, "chart.svg");
  fs.writeFileSync(out, renderChart(inputs));
  return out;
}

if ((import.meta as ImportMeta & { main?: boolean }).main) console.log(writeChart());
