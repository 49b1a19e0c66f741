/**
 * Deno's built-in OpenTelemetry: a Deno process started with `OTEL_DENO=true`
 * (and an OTLP endpoint) exports the pool's `db.client.connection.*` metrics
 * with no set-up in the application — no SDK, no `meter` option. The test
 * plays the OTLP/HTTP collector (JSON) and runs tests/integration/otel_deno_child.ts
 * under Deno, from either test runner.
 */

import { before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import * as path from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { getTestServer, type TestServer } from "../support/pg_server.ts";

const here = path.dirname(fileURLToPath(import.meta.url));

/** The Deno binary: this one under Deno, else the pinned one in .tools (CI installs it), else PATH's. */
function denoBinary(): string {
  const deno = (globalThis as { Deno?: { execPath(): string } }).Deno;
  if (deno !== undefined) return deno.execPath();
  const pinned = path.join(here, "..", "..", ".tools", "node_modules", ".bin", "deno");
  return fs.existsSync(pinned) ? pinned : "deno";
}

interface DataPoint {
  attributes?: { key: string; value: { stringValue?: string } }[];
  asInt?: string | number;
  asDouble?: number;
}
interface OtlpMetric {
  name: string;
  sum?: { dataPoints: DataPoint[] };
  gauge?: { dataPoints: DataPoint[] };
  histogram?: { dataPoints: (DataPoint & { count?: string | number })[] };
}
interface OtlpExport {
  resourceMetrics?: { scopeMetrics?: { scope?: { name?: string }; metrics?: OtlpMetric[] }[] }[];
}

/** The metrics of scope `@x/pgpool` in one OTLP export. */
function poolMetrics(body: OtlpExport): OtlpMetric[] {
  return (body.resourceMetrics ?? []).flatMap((r) => r.scopeMetrics ?? [])
    .filter((s) => s.scope?.name === "@x/pgpool").flatMap((s) => s.metrics ?? []);
}

function attribute(point: DataPoint, key: string): string | undefined {
  return point.attributes?.find((a) => a.key === key)?.value.stringValue;
}

let server: TestServer;

describe("OpenTelemetry under OTEL_DENO=true", { timeout: 60_000 }, () => {
  before(async () => {
    server = await getTestServer();
  });

  it(
    "Pool metrics reach Deno's OTLP exporter with no set-up: count by state, max and the histograms, named by the pool",
    {
      timeout: 40_000,
    },
    async () => {
      const exports: OtlpExport[] = [];
      let saw: () => void = () => {};
      const seen = new Promise<void>((resolve) => (saw = resolve));
      /** Connection counts by state from the latest export that had both. */
      let counts: Record<string, number> | undefined;
      const collector = http.createServer((req, res) => {
        let text = "";
        req.on("data", (d: Uint8Array) => (text += new TextDecoder().decode(d)));
        req.on("end", () => {
          res.writeHead(200, { "content-type": "application/json" });
          res.end("{}");
          if (req.url !== "/v1/metrics") return;
          const body = JSON.parse(text) as OtlpExport;
          exports.push(body);
          const count = poolMetrics(body).find((m) => m.name === "db.client.connection.count");
          const points = count?.sum?.dataPoints ?? [];
          const byState: Record<string, number> = {};
          for (const p of points) {
            if (attribute(p, "db.client.connection.pool.name") !== "otel-e2e") continue;
            byState[attribute(p, "db.client.connection.state") ?? "?"] = Number(p.asInt ?? p.asDouble);
          }
          if (byState.used === 1 && byState.idle === 1) {
            counts = byState;
            saw();
          }
        });
      });
      await new Promise<void>((resolve) => collector.listen(0, "127.0.0.1", resolve));
      const port = (collector.address() as AddressInfo).port;
      const child = spawn(denoBinary(), ["run", "-A", path.join(here, "otel_deno_child.ts")], {
        env: {
          ...process.env as Record<string, string>,
          OTEL_DENO: "true",
          OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`,
          OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
          OTEL_METRIC_EXPORT_INTERVAL: "200",
          OTEL_E2E_DSN: server.dsn,
          NO_COLOR: "1",
        },
        stdio: ["pipe", "pipe", "pipe"],
      });
      let output = "";
      child.stdout!.on("data", (d: Uint8Array) => (output += new TextDecoder().decode(d)));
      child.stderr!.on("data", (d: Uint8Array) => (output += new TextDecoder().decode(d)));
      const exited = new Promise<number | null>((resolve, reject) => {
        child.on("error", reject);
        child.on("close", (code) => resolve(code));
      });
      let timer: ReturnType<typeof setTimeout> | undefined;
      const limit = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          child.kill("SIGKILL");
          reject(
            new Error(
              `no export of the pool's metrics within 30 s (${exports.length} exports); output:\n${output}`,
            ),
          );
        }, 30_000);
      });
      try {
        await Promise.race([
          seen,
          limit,
          exited.then((code) => {
            throw new Error(`the child exited (${code}) before its metrics were seen; output:\n${output}`);
          }),
        ]);
        child.stdin!.write("stop\n");
        assert.equal(await Promise.race([exited, limit]), 0, output);
      } finally {
        clearTimeout(timer);
        child.kill("SIGKILL");
        collector.close();
      }
      assert.deepEqual(counts, { used: 1, idle: 1 });
      assert.match(output, /DONE/);
      const names = new Set(exports.flatMap((e) => poolMetrics(e).map((m) => m.name)));
      for (
        const name of [
          "db.client.connection.count",
          "db.client.connection.idle.max",
          "db.client.connection.idle.min",
          "db.client.connection.max",
          "db.client.connection.pending_requests",
          "db.client.connection.timeouts",
          "db.client.connection.create_time",
          "db.client.connection.wait_time",
          "db.client.connection.use_time",
        ]
      ) assert.ok(names.has(name), `${name} exported (got ${[...names].join(", ")})`);
      const max = exports.flatMap((e) => poolMetrics(e)).find((m) => m.name === "db.client.connection.max");
      const maxPoint = (max?.sum ?? max?.gauge)?.dataPoints[0];
      assert.equal(Number(maxPoint?.asInt ?? maxPoint?.asDouble), 2);
      assert.equal(attribute(maxPoint!, "db.client.connection.pool.name"), "otel-e2e");
    },
  );
});
