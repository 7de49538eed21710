import { describe, expect, it } from 'vitest';
import { parseDatabaseUrl } from '../../../src/engine/store/url.js';

describe('parseDatabaseUrl', () => {
  it('reads SQLite URLs and plain paths', () => {
    expect(parseDatabaseUrl('sqlite:/var/lib/scms/ra.db')).toEqual({ dialect: 'sqlite', path: '/var/lib/scms/ra.db', synchronous: undefined });
    expect(parseDatabaseUrl('sqlite:data/ra.db')).toEqual({ dialect: 'sqlite', path: 'data/ra.db', synchronous: undefined });
    expect(parseDatabaseUrl('sqlite:///abs/ra.db')).toMatchObject({ path: '/abs/ra.db' });
    expect(parseDatabaseUrl('./ra.db')).toMatchObject({ dialect: 'sqlite', path: './ra.db' });
    expect(parseDatabaseUrl('sqlite::memory:')).toMatchObject({ path: ':memory:' });
    expect(parseDatabaseUrl('sqlite:/x/ra.db?synchronous=full')).toEqual({ dialect: 'sqlite', path: '/x/ra.db', synchronous: 'FULL' });
  });

  it('rejects bad SQLite options and empty paths', () => {
    expect(() => parseDatabaseUrl('sqlite:/x.db?synchronous=off')).toThrow(/synchronous/);
    expect(() => parseDatabaseUrl('sqlite:')).toThrow(/no SQLite file/);
  });

  it('reads PostgreSQL URLs and strips the schema parameter', () => {
    const c = parseDatabaseUrl('postgres://u:p@db.example:6543/scms?schema=ra&sslmode=require');
    expect(c).toEqual({ dialect: 'postgres', connectionString: 'postgres://u:p@db.example:6543/scms?sslmode=require', schema: 'ra' });
    expect(parseDatabaseUrl('postgresql://h/db')).toMatchObject({ dialect: 'postgres', schema: undefined });
  });

  it('refuses schema names that would need quoting', () => {
    expect(() => parseDatabaseUrl('postgres://h/db?schema=Bad-Name')).toThrow(/invalid schema/);
    expect(() => parseDatabaseUrl('postgres://h/db?schema=a;drop')).toThrow(/invalid schema/);
  });
});
