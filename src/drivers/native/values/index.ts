/**
 * Value codecs of the native wire engine: result parsers by type oid and
 * parameter serialization, giving the values postgres.js gives.
 *
 * @module
 */
export { type ArrayTypeRow, createTypeRegistry, type Parser, type TypeRegistry } from "./registry.ts";
export { inferParamOid, serializeParam, type WireParam } from "./params.ts";
export { parseArrayLiteral, serializeArrayLiteral } from "./arrays.ts";
