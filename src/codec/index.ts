/**
 * Public entry of the codec layer: the COER codec contract (coer/codec.ts), the schema IR (schema.ts) and every
 * generated IEEE 1609.2 / 1609.2.1 type (gen/, built by `npm run gen:asn1`; naming rules in README.md).
 */
export { codec, CoerError, type Codec } from './coer/codec.js';
export type * from './schema.js';
export * from './gen/index.js';
