// Finding the canonical public key that signed an EeEcaCertRequestSpdu.
//
// 1609.2.1 Ieee1609Dot2Dot1Protocol, EeEcaCertRequestSpdu: "If eeEcaCertRequest.canonicalId is present, the EE
// signs this structure using the canonical private key as specified in 4.1.4.2"; EeEcaCertRequest.canonicalId:
// "The receiver is intended to use the canonicalId to look up the canonical public key to verify the certificate
// request." The signer field is SignerSelf, so the key is not in the request. Our canonical id is the HashedId8 of
// the compressed canonical key (src/engine/ra/registration.ts), so the ECA recovers the (at most four) public keys
// for which the ECDSA signature is valid, Q = r^-1 (s R - e G) for each R with x(R) mod n = r, and keeps the one
// whose HashedId8 is the canonicalId. The registry then confirms that key is registered; the signature is verified
// once more with it through the ordinary 1609.2 path.
import { bytesToBigInt, bigIntToBytes } from '../../crypto/bytes.js';
import { curve, decompress, encodeCompressed, mulBasePoint, mulPointPublic, type CurveName, type Point } from '../../crypto/curves.js';
import { hash } from '../../crypto/hash.js';
import { signatureInput1609Dot2 } from '../../crypto/ecdsa.js';
import type { Signature } from '../../codec/index.js';
import { ecdsaFromSignature } from '../../security/certificate.js';

/**
 * Public keys (compressed) for which `signature` is a valid 1609.2 self-signature (signer input H("")) over
 * `tbsBytes`. Empty when the signature is malformed.
 */
export function recoverSelfSignerKeys(tbsBytes: Uint8Array, signature: Signature): { curve: CurveName; publicKeys: Uint8Array[] } | undefined {
  let parsed;
  try {
    parsed = ecdsaFromSignature(signature);
  } catch {
    return undefined;
  }
  const name = parsed.curve;
  const c = curve(name);
  const Fn = c.Fn;
  const r = bytesToBigInt(parsed.signature.r);
  const s = bytesToBigInt(parsed.signature.s);
  if (s <= 0n || s >= c.n) return { curve: name, publicKeys: [] };
  // x-only: r = x(R) mod n, so x(R) is r or r + n (when below p); compressed-y-b: x(R) and its y parity are given.
  const xs: bigint[] = [];
  let parities: Array<0 | 1> = [0, 1];
  if (parsed.signature.rForm === 'x-only') {
    if (r <= 0n || r >= c.n) return { curve: name, publicKeys: [] };
    xs.push(r);
    if (r + c.n < c.Point.Fp.ORDER) xs.push(r + c.n);
  } else {
    xs.push(r);
    parities = [parsed.signature.rForm === 'compressed-y-1' ? 1 : 0];
  }
  const rModN = Fn.create(r);
  if (rModN === 0n) return { curve: name, publicKeys: [] };
  const message = signatureInput1609Dot2(tbsBytes, undefined, c.hash);
  const e = Fn.create(bytesToBigInt(hash(c.hash, message)));
  const rInv = Fn.inv(rModN);
  const u1 = Fn.neg(Fn.mul(e, rInv));
  const u2 = Fn.mul(s, rInv);
  const out: Uint8Array[] = [];
  for (const x of xs) {
    for (const parity of parities) {
      let R: Point;
      try {
        R = decompress(name, bigIntToBytes(x, c.size), parity);
      } catch {
        continue;
      }
      let Q = mulPointPublic(name, R, u2);
      if (u1 !== 0n) Q = Q.add(mulBasePoint(name, u1));
      if (Q.is0()) continue;
      out.push(encodeCompressed(Q));
    }
  }
  return { curve: name, publicKeys: out };
}
