// DER pieces PKCS#11 needs for EC keys (PKCS#11 v2.40 2.3.3/2.3.4), built and parsed with asn1js.
import * as asn1js from 'asn1js';
import { CURVES, type CurveInfo, KeyStoreError } from './keystore.js';

/** CKA_EC_PARAMS: DER of the namedCurve OBJECT IDENTIFIER (X9.62 ECParameters choice namedCurve). */
export function ecParamsDer(curve: CurveInfo): Buffer {
  return Buffer.from(new asn1js.ObjectIdentifier({ value: curve.oid }).toBER(false));
}

export function curveFromEcParams(der: Uint8Array): CurveInfo {
  const parsed = asn1js.fromBER(der);
  const oid =
    parsed.offset !== -1 && parsed.result instanceof asn1js.ObjectIdentifier ? parsed.result.valueBlock.toString() : undefined;
  const c = Object.values(CURVES).find((x) => x.oid === oid);
  if (!c) throw new KeyStoreError('BAD_CURVE', `unsupported CKA_EC_PARAMS (${oid ?? Buffer.from(der).toString('hex')})`);
  return c;
}

/**
 * CKA_EC_POINT is the DER OCTET STRING wrapping the SEC 1 point (PKCS#11 v2.40 2.3.3);
 * some tokens return the raw point, accepted as well.
 */
export function pointFromEcPoint(curve: CurveInfo, value: Uint8Array): Buffer {
  const rawLen = 2 * curve.size + 1;
  if (value.length === rawLen && value[0] === 0x04) return Buffer.from(value);
  const parsed = asn1js.fromBER(value);
  if (parsed.offset === value.length && parsed.result instanceof asn1js.OctetString) {
    const p = Buffer.from(parsed.result.valueBlock.valueHexView);
    if (p.length === rawLen && p[0] === 0x04) return p;
  }
  throw new KeyStoreError('BAD_KEY', 'CKA_EC_POINT is not an uncompressed point in a DER OCTET STRING');
}
