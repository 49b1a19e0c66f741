/**
 * A connection's own type codecs over the driver's shared type registry: the
 * native side of `Connection.setTypeCodec()`.
 *
 * @module
 */
import type { CodecType, TextCodec } from "../../../core/type_codecs.ts";
import { parseArrayLiteral, serializeArrayLiteral } from "./arrays.ts";
import type { ArrayTypeRow, Parser, TypeRegistry } from "./registry.ts";

/** Serializes an argument to the text of its parameter type. */
export type Encoder = (value: unknown) => string;

/**
 * Parsers and encoders one connection set, in front of the shared registry;
 * a type put back on its built-in codec falls through to the registry again.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createTypeRegistry } from "./registry.ts";
 * import { ConnectionCodecs } from "./codecs.ts";
 * const codecs = new ConnectionCodecs(createTypeRegistry());
 * codecs.set({ oid: 23, arrayOid: 1007 }, { decoder: (t) => BigInt(t), encoder: String });
 * assert.equal(codecs.parser(23)!("5"), 5n);
 * assert.deepEqual(codecs.parser(1007)!("{1,2}"), [1n, 2n]);
 * assert.equal(codecs.encoder(1007)!([1n, 2n]), '{"1","2"}');
 * codecs.set({ oid: 23, arrayOid: 1007 }, undefined);
 * assert.equal(codecs.parser(23)!("5"), 5);
 * assert.equal(codecs.encoder(23), undefined);
 * ```
 */
export class ConnectionCodecs implements TypeRegistry {
  readonly #base: TypeRegistry;
  readonly #parsers = new Map<number, Parser>();
  readonly #encoders = new Map<number, Encoder>();

  /** @param base The driver's shared registry (never changed by this). */
  constructor(base: TypeRegistry) {
    this.#base = base;
  }

  get arrayTypeQuery(): string {
    return this.#base.arrayTypeQuery;
  }

  parser(oid: number): Parser | undefined {
    return this.#parsers.get(oid) ?? this.#base.parser(oid);
  }

  addArrayTypes(rows: readonly ArrayTypeRow[]): void {
    this.#base.addArrayTypes(rows);
  }

  /** The connection's encoder of parameters of type `oid`, if it set one. */
  encoder(oid: number): Encoder | undefined {
    return this.#encoders.get(oid);
  }

  /** Sets the codec of `type` (and its array type), or with `undefined` removes it. */
  set(type: CodecType, codec: TextCodec | undefined): void {
    const { oid, arrayOid } = type;
    if (codec === undefined) {
      this.#parsers.delete(oid);
      this.#encoders.delete(oid);
      if (arrayOid !== 0) {
        this.#parsers.delete(arrayOid);
        this.#encoders.delete(arrayOid);
      }
      return;
    }
    const { decoder, encoder } = codec;
    this.#parsers.set(oid, (text) => decoder(text));
    this.#encoders.set(oid, (value) => encoder(value));
    if (arrayOid !== 0) {
      this.#parsers.set(arrayOid, (text) => parseArrayLiteral(text, decoder));
      this.#encoders.set(arrayOid, (value) => serializeArrayLiteral(value, encoder));
    }
  }
}
