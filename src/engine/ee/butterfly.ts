/**
 * EE side of the butterfly key request (IEEE 1609.2.1 9.3; EeRaCertRequest in Ieee1609Dot2Dot1EeRaInterface):
 * fresh caterpillar key pair(s) and AES-128 expansion keys, and the EeRaCertRequest that carries their public
 * halves (tbsCert.verifyKeyIndicator.verificationKey = signing caterpillar A; additionalParams original
 * {signingExpansion, encryptionKey H, encryptionExpansion} | unified | compactUnified {expansion key}).
 * The secrets stay with the EE (in memory here; the caller persists them encrypted if it must).
 */
import type { ToBeSignedCertificate } from '../../codec/index.js';
import type { EeRaCertRequest } from '../../codec/gen/Ieee1609Dot2Dot1EeRaInterface.js';
import { bytesToBigInt } from '../../crypto/bytes.js';
import type { ButterflyCurve, ButterflyPrivateParams, ButterflyVariant } from '../../crypto/butterfly.js';
import { generateKeyPair } from '../../crypto/ecdh.js';
import { randomOctets } from '../../crypto/random.js';
import { publicEncryptionKey, publicVerificationKey } from '../../security/certificate.js';
import { nowTime32, systemClock, type Clock } from '../../security/time.js';

/** What the EE keeps to process the responses: the butterfly secrets and the request's variant and type. */
export interface ButterflySecrets {
  readonly curve: ButterflyCurve;
  readonly type: 'explicit' | 'implicit';
  readonly params: ButterflyPrivateParams;
}

export interface ButterflyRequestOptions {
  readonly variant: ButterflyVariant;
  readonly type: 'explicit' | 'implicit';
  readonly curve?: ButterflyCurve;
  /** The requested certificate contents (validityPeriod of the first batch, appPermissions, region, ...). */
  readonly tbsCert: Pick<ToBeSignedCertificate, 'validityPeriod' | 'appPermissions'> & Partial<Pick<ToBeSignedCertificate, 'id' | 'region' | 'assuranceLevel'>>;
  readonly clock?: Clock;
}

export function createButterflyRequest(opts: ButterflyRequestOptions): { request: EeRaCertRequest; secrets: ButterflySecrets } {
  const c = opts.curve ?? 'nistP256';
  if (opts.variant === 'compactUnified' && opts.type !== 'implicit') throw new Error('compact unified butterfly keys are for implicit certificates only');
  if (!opts.tbsCert.appPermissions) throw new Error('appPermissions required');
  const a = generateKeyPair(c);
  const sigExp = randomOctets(16);
  let additionalParams: EeRaCertRequest['additionalParams'];
  let params: ButterflyPrivateParams;
  if (opts.variant === 'original') {
    const h = generateKeyPair(c);
    const encExp = randomOctets(16);
    additionalParams = {
      original: { signingExpansion: { aes128: sigExp }, encryptionKey: publicEncryptionKey(c, h.publicKey), encryptionExpansion: { aes128: encExp } },
    };
    params = {
      variant: 'original',
      signingCaterpillarPrivate: bytesToBigInt(a.privateKey),
      signingExpansionKey: sigExp,
      encryptionCaterpillarPrivate: bytesToBigInt(h.privateKey),
      encryptionExpansionKey: encExp,
    };
  } else {
    additionalParams = opts.variant === 'unified' ? { unified: { aes128: sigExp } } : { compactUnified: { aes128: sigExp } };
    params = { variant: opts.variant, caterpillarPrivate: bytesToBigInt(a.privateKey), expansionKey: sigExp };
  }
  const request = eeRaCertRequest({ type: opts.type, curve: c, tbsCert: opts.tbsCert, publicKey: a.publicKey, additionalParams, ...(opts.clock ? { clock: opts.clock } : {}) });
  return { request, secrets: { curve: c, type: opts.type, params } };
}

/**
 * The EeRaCertRequest (1609.2.1 EeRaInterface) for the requested contents, with tbsCert.verifyKeyIndicator the
 * verification key `publicKey` (butterfly: the signing caterpillar A; plain / encrypted: the certificate key), cracaId
 * 000000, crlSeries 0 and id none unless requested.
 */
export function eeRaCertRequest(o: {
  readonly type: 'explicit' | 'implicit';
  readonly curve: ButterflyCurve;
  readonly tbsCert: ButterflyRequestOptions['tbsCert'];
  readonly publicKey: Uint8Array;
  readonly additionalParams?: EeRaCertRequest['additionalParams'];
  readonly clock?: Clock;
}): EeRaCertRequest {
  const t = o.tbsCert;
  return {
    version: 2,
    generationTime: nowTime32(o.clock ?? systemClock),
    type: o.type,
    tbsCert: {
      id: t.id ?? { none: null },
      cracaId: new Uint8Array(3),
      crlSeries: 0,
      validityPeriod: t.validityPeriod,
      ...(t.region ? { region: t.region } : {}),
      ...(t.assuranceLevel ? { assuranceLevel: t.assuranceLevel } : {}),
      appPermissions: t.appPermissions!,
      verifyKeyIndicator: { verificationKey: publicVerificationKey(o.curve, o.publicKey) },
    },
    ...(o.additionalParams ? { additionalParams: o.additionalParams } : {}),
  };
}
