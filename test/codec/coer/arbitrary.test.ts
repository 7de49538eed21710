/** The value generator reaches the cases the property tests rely on. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { arbitraryFor } from '../../helpers/arbitrary.js';
import * as S from './fixtures.js';

const sample = <T>(schema: Parameters<typeof arbitraryFor>[0], n = 400): T[] =>
  fc.sample(arbitraryFor(schema, 3), { numRuns: n, seed: 42 }) as T[];

describe('arbitraryFor', () => {
  it('uses the open-type table and the unknown form', () => {
    const xs = sample<{ id: number; content: unknown }>(S.Extension);
    expect(xs.some((x) => x.id === 2 && typeof x.content === 'object' && !('$unknownOpenType' in (x.content as object)))).toBe(true);
    expect(xs.some((x) => typeof x.content === 'object' && '$unknownOpenType' in (x.content as object))).toBe(true);
  });
  it('generates extension additions, groups and unknown additions', () => {
    const xs = sample<Record<string, unknown>>(S.WithExtensions);
    for (const k of ['x1', 'g1', 'g2', 'x3', 'h1', 'h2', '$unknownExtensions']) expect(xs.some((x) => k in x)).toBe(true);
    expect(xs.every((x) => x.x3 !== 5)).toBe(true); // never the DEFAULT
  });
  it('respects presence, permitted ranges and bounds', () => {
    expect(sample<Record<string, unknown>>(S.Presence).every((x) => 'must' in x && !('never' in x))).toBe(true);
    expect(sample<number>(S.Permitted).every((v) => (v >= 1 && v <= 3) || v === 10)).toBe(true);
    const big = sample<bigint>(S.Uint64);
    expect(big.every((v) => typeof v === 'bigint' && v >= 0n && v < 2n ** 64n)).toBe(true);
  });
  it('reaches unknown and extension CHOICE alternatives but never excluded ones', () => {
    const xs = sample<Record<string, unknown>>(S.Choice, 800);
    for (const k of ['small', 'text', 'app', 'far', 'ext', 'extLong', '$unknown']) expect(xs.some((x) => k in x)).toBe(true);
    expect(xs.some((x) => 'excluded' in x)).toBe(false);
  });
  it('bounds recursion and still nests', () => {
    const xs = sample<unknown>(S.Data, 300);
    const depth = (v: unknown): number =>
      typeof v === 'object' && v !== null && !(v instanceof Uint8Array)
        ? 1 + Math.max(0, ...Object.values(v as object).map(depth))
        : 0;
    expect(Math.max(...xs.map(depth))).toBeGreaterThan(4);
    expect(Math.max(...xs.map(depth))).toBeLessThan(40);
  });
  it('produces lengths that need the long form', () => {
    expect(sample<Uint8Array>(S.Opaque).some((b) => b.length >= 128)).toBe(true);
  });
});
