/**
 * The names every entry point exports besides `Pool`, `createPool` and
 * `connect` (which each entry point binds to its runtime adapter).
 *
 * @module
 */

export { type Clock, systemClock, type TimerHandle } from "./core/clock.ts";
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
} from "./core/connection.ts";
export { Cursor, type CursorOptions } from "./core/cursor.ts";
export {
  type Attribute,
  type ExplainOptions,
  type PgType,
  type PgTypeKind,
  PreparedStatement,
} from "./core/prepared_statement.ts";
export type {
  ColumnDescription,
  ConnectOptions,
  Driver,
  DriverCapabilities,
  DriverConnection,
  DriverName,
  DriverQueryOptions,
  NotificationListener,
  QueryOptions,
  QueryResult,
  Row,
  ServerVersion,
  SslMode,
  StatementDescription,
  TransactionStatus,
} from "./core/driver.ts";
export {
  ConnectionError,
  InterfaceError,
  type InterfaceErrorCode,
  PoolError,
  PoolTimeoutError,
  PostgresError,
  type PostgresErrorFields,
  type TimeoutErrorCode,
} from "./core/errors.ts";
export type {
  ListenCallback,
  ListenGap,
  ListenGapHandler,
  ListenOptions,
  Unlisten,
} from "./core/listen_service.ts";
export { type LogListener, type Notice } from "./core/log_listeners.ts";
export type { ConnectHook, PoolMode, PoolOptions } from "./core/options.ts";
export type { RowFactory } from "./core/row_factory.ts";
export type { CodecType, TextCodec, TypeCodec } from "./core/type_codecs.ts";
export { type AcquireOptions, BasePool, type CloseOptions, type ReleaseOptions } from "./core/pool.ts";
export { PoolConnection } from "./core/pool_connection.ts";
export type {
  MetricAttributes,
  MetricBatchCallback,
  MetricBatchResult,
  MetricHistogram,
  MetricObservable,
  MetricOptions,
  PoolMeter,
} from "./core/pool_metrics.ts";
export type { CloseCounts, CloseReason, PoolStats } from "./core/pool_stats.ts";
export type { QueryApi, SessionApi } from "./core/query_api.ts";
export { type CopyFormatOptions, quoteIdentifier } from "./core/sql_text.ts";
export type { ConnectFunction, CreatePoolFunction, PoolClass } from "./_bind.ts";
export type {
  Connector,
  ConnectTransportOptions,
  TlsOptions,
  Transport,
  TransportHandlers,
  TransportTarget,
} from "./runtime/transport.ts";
export type { PoolWarning, WarningCode, WarningHandler } from "./core/warnings.ts";
