/** A driver whose every operation succeeds at once: measures the pool core alone. */
import { Connection } from "../src/core/connection.ts";
import type { DriverConnection, QueryResult, ServerVersion, TransactionStatus } from "../src/core/driver.ts";

const RESULT: QueryResult = { rows: [{ n: 1 }], columns: ["n"], command: "SELECT 1" };
let pid = 1;

class NoopConnection implements DriverConnection {
  readonly pid = pid++;
  readonly serverVersion: ServerVersion = { major: 16, minor: 0, micro: 0, text: "16.0" };
  queryCount = 0;
  transactionStatus: TransactionStatus = "idle";
  #closed = false;
  #onClose: ((e: Error | undefined) => void) | undefined;
  isClosed(): boolean {
    return this.#closed;
  }
  query(): Promise<QueryResult> {
    this.queryCount++;
    return Promise.resolve(RESULT);
  }
  queryMany(): Promise<QueryResult[]> {
    return Promise.resolve([RESULT]);
  }
  copyOut(): Promise<string> {
    return Promise.resolve("COPY 0");
  }
  copyIn(): Promise<string> {
    return Promise.resolve("COPY 0");
  }
  listen(): Promise<void> {
    return Promise.resolve();
  }
  unlisten(): Promise<void> {
    return Promise.resolve();
  }
  reset(): Promise<void> {
    this.queryCount++;
    return Promise.resolve();
  }
  close(): Promise<void> {
    this.terminate();
    return Promise.resolve();
  }
  terminate(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#onClose?.(undefined);
  }
  ref(): void {}
  unref(): void {}
  onClose(listener: (e: Error | undefined) => void): void {
    this.#onClose = listener;
  }
  resetQuery(): string {
    return "";
  }
  onNotice(): void {}
  setTypeCodec(): void {}
}

/** A pool `connect` hook for the no-op driver. */
export const noopConnect = (): Promise<Connection> => Promise.resolve(new Connection(new NoopConnection()));
