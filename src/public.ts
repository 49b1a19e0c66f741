/**
 * The names every entry point exports besides `Pool`, `createPool` and
 * `connect` (which each entry point binds to its runtime adapter).
 *
 * @module
 */

export { type Clock, systemClock, type TimerHandle } from "./clock.ts";
export {
  Connection,
  type CopyFromQueryOptions,
  type CopyFromTableOptions,
  type CopyOutput,
  type CopyRecordsOptions,
  type CopySource,
  type CopyToTableOptions,
  type FetchValOptions,
  type TransactionOptions,
} from "./connection.ts";
export type {
  ConnectOptions,
  Driver,
  DriverConnection,
  NotificationListener,
  QueryOptions,
  QueryResult,
  Row,
  ServerVersion,
  SslMode,
  TransactionStatus,
} from "./driver.ts";
export {
  ConnectionError,
  InterfaceError,
  type InterfaceErrorCode,
  PoolError,
  PoolTimeoutError,
  PostgresError,
  type PostgresErrorFields,
  type TimeoutErrorCode,
} from "./errors.ts";
export type { ConnectHook, PoolOptions } from "./options.ts";
export { type AcquireOptions, BasePool, type CloseOptions, type ReleaseOptions } from "./pool.ts";
export { PoolConnection } from "./pool_connection.ts";
export { type CopyFormatOptions, quoteIdentifier } from "./sql_text.ts";
export type { ConnectFunction } from "./entry.ts";
export type {
  Connector,
  ConnectTransportOptions,
  TlsOptions,
  Transport,
  TransportHandlers,
  TransportTarget,
} from "./transport.ts";
export type { PoolWarning, WarningCode, WarningHandler } from "./warnings.ts";
