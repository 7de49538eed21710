import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { KeyStoreError } from '../../src/hsm/keystore.js';
import { formatPkcs11Uri, parsePkcs11Uri } from '../../src/hsm/pkcs11-uri.js';

const bad = (uri: string, re: RegExp) =>
  expect(() => parsePkcs11Uri(uri)).toThrow(expect.objectContaining({ code: 'BAD_URI', message: expect.stringMatching(re) }));

describe('RFC 7512 PKCS#11 URIs', () => {
  it('parses path and query attributes with percent-decoding', () => {
    const u = parsePkcs11Uri(
      'pkcs11:token=The%20Software%20PKCS%2311%20softtoken;object=root-ca-1;type=private;id=%01%ff%3A' +
        '?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/run/secrets/pin',
    );
    expect(u.token).toBe('The Software PKCS#11 softtoken');
    expect(u.object).toBe('root-ca-1');
    expect(u.type).toBe('private');
    expect(u.id).toEqual(Buffer.from([0x01, 0xff, 0x3a]));
    expect(u.modulePath).toBe('/usr/lib/softhsm/libsofthsm2.so');
    expect(u.pinSource).toBe('file:/run/secrets/pin');
  });

  it('decodes UTF-8 labels and keeps reserved characters that need no encoding', () => {
    const u = parsePkcs11Uri('pkcs11:token=K%C3%B6ln;object=a:b@c,d=e&f');
    expect(u.token).toBe('Köln');
    expect(u.object).toBe('a:b@c,d=e&f');
  });

  it('rejects malformed URIs', () => {
    bad('file:keys/a.key', /not a pkcs11: URI/);
    bad('pkcs11:token=a;token=b', /repeated/);
    bad('pkcs11:tokn=a', /unknown path attribute 'tokn'/);
    bad('pkcs11:token=a%2', /percent-encoding/);
    bad('pkcs11:token=a%zz', /percent-encoding/);
    bad('pkcs11:token=%ff', /not UTF-8/);
    bad('pkcs11:object', /malformed/);
    bad('pkcs11:type=secret', /unknown object type/);
    bad('pkcs11:token=a?pin-value=1&pin-source=/x', /mutually exclusive/);
    bad('pkcs11:token=a#frag', /fragment/);
  });

  it('ignores unknown query attributes and accepts vendor x- attributes', () => {
    const u = parsePkcs11Uri('pkcs11:token=t;x-vendor=1?foo=bar&module-name=softhsm2');
    expect(u.token).toBe('t');
    expect(u.path.get('x-vendor')).toBe('1');
    expect(u.query.has('foo')).toBe(false);
    expect(u.query.get('module-name')).toBe('softhsm2');
  });

  it('formats with percent-encoding (id fully encoded) and parses back to the same values', () => {
    expect(formatPkcs11Uri({ token: 'scms', object: 'root-ca-1' })).toBe('pkcs11:token=scms;object=root-ca-1');
    expect(formatPkcs11Uri({ token: 'a b;c/d?e%', id: Buffer.from([0x41, 0x00]) })).toBe(
      'pkcs11:token=a%20b%3Bc%2Fd%3Fe%25;id=%41%00',
    );
    fc.assert(
      fc.property(
        fc.string({ unit: 'grapheme', minLength: 0, maxLength: 40 }),
        fc.string({ unit: 'grapheme', minLength: 1, maxLength: 40 }),
        fc.uint8Array({ minLength: 0, maxLength: 20 }),
        fc.string({ minLength: 1, maxLength: 40 }),
        (token, object, id, modulePath) => {
          const uri = formatPkcs11Uri({ token, object, id, modulePath });
          expect(uri).not.toMatch(/[\s#]/);
          const u = parsePkcs11Uri(uri);
          expect(u.token).toBe(token);
          expect(u.object).toBe(object);
          expect(u.id).toEqual(Buffer.from(id));
          expect(u.modulePath).toBe(modulePath);
        },
      ),
    );
  });

  it('errors are KeyStoreErrors', () => {
    try {
      parsePkcs11Uri('nope');
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(KeyStoreError);
    }
  });
});
