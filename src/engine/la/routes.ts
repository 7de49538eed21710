// LA HTTP routes (asn1/scms/ScmsInterfaces.asn; internal, COER application/octet-stream):
//   POST /internal/la/pre-linkage-values  RaLaPreLinkageValueRequestSpdu (signed by an RA) -> LaRaPreLinkageValueResponseSpdu
//   POST /internal/la/aca-key             AcaLaPlvKeyRequestSpdu (signed by an ACA)       -> LaAcaPlvKeyDeliverySpdu
//   POST /internal/la/revocation-seed     RaLaRevocationSeedRequestSpdu (signed by an RA)  -> LaRaRevocationSeedResponseSpdu
//                                         (ls(i) of a chain for a linkage-based CRL entry, crl/service.ts)
// The sender is authenticated by its signature, certificate chain and SecurityMgmtSsp role (PeerTrust); an optional
// component bearer token is checked first. Refusals are ScmsHttpErrors (fine-grained: internal routes).
import type { FastifyInstance } from 'fastify';
import {
  AcaLaPlvKeyRequestSpdu as AcaLaPlvKeyRequestSpduCodec,
  RaLaPreLinkageValueRequestSpdu as RaLaPreLinkageValueRequestSpduCodec,
  RaLaRevocationSeedRequestSpdu as RaLaRevocationSeedRequestSpduCodec,
  type Certificate,
} from '../../codec/index.js';
import { toHex } from '../../crypto/bytes.js';
import { sha256 } from '../../crypto/hash.js';
import { certificateHashedId8 } from '../../security/certificate.js';
import type { Signer } from '../../security/signer.js';
import { bearerAuth, type TokenSource } from '../http/auth.js';
import { Ieee1609Dot2Dot1ErrorCode as E, ScmsHttpError } from '../http/errors.js';
import { audit } from '../http/logger.js';
import { octetStreamBody } from '../http/server.js';
import { PeerTrust, scmsLocalPdu, signedLocalSpdu, type PeerTrustOptions } from './http-spdu.js';
import { LaError, laIdOctets, type LaClient, type LaKeyClient, type PreLinkageValuesRequest } from './la.js';

export const LA_PRE_LINKAGE_VALUES_PATH = '/internal/la/pre-linkage-values';
export const LA_ACA_KEY_PATH = '/internal/la/aca-key';
export const LA_REVOCATION_SEED_PATH = '/internal/la/revocation-seed';

const ROUTE = { config: { errorFormat: 'text', fineErrors: true } } as const;

export interface LaHttpDeps {
  /** The LA (LaService). */
  readonly la: LaClient &
    LaKeyClient & {
      readonly certificate: Certificate;
      /** LaService.seedsForRevocation; absent: the revocation-seed route answers 404. */
      seedsForRevocation?(chainId: Uint8Array, i: number): Promise<{ laId: number; linkageSeed: Uint8Array }>;
    };
  /** Key of the LA certificate: signs the responses. */
  readonly signer: Signer;
  /** Which RA / ACA certificates are accepted (chain to these anchors + role). */
  readonly trust: PeerTrust | PeerTrustOptions;
  /** Component bearer token; absent: signatures alone authenticate. */
  readonly token?: TokenSource;
}

const idOf = (c: Certificate) => toHex(certificateHashedId8(c));

/** Mounts the LA's internal routes. */
export async function registerLa(app: FastifyInstance, deps: LaHttpDeps): Promise<void> {
  const { la, signer } = deps;
  const trust = deps.trust instanceof PeerTrust ? deps.trust : new PeerTrust(deps.trust);
  const ownLaId = toHex(laIdOctets(la.laId));
  const opts = deps.token === undefined ? ROUTE : { ...ROUTE, preHandler: bearerAuth({ realm: 'scms-internal', token: deps.token, actor: 'component' }) };

  app.post(LA_PRE_LINKAGE_VALUES_PATH, opts, async (request, reply) => {
    const body = octetStreamBody(request);
    const { pdu, signerCertificate } = trust.verify(body, RaLaPreLinkageValueRequestSpduCodec, 'ra');
    const c = pdu.content;
    if (!('la-ra' in c) || !('raLaPreLinkageValueRequest' in c['la-ra'])) throw new ScmsHttpError(400, E.invalidContent, 'not a RaLaPreLinkageValueRequest');
    const r = c['la-ra'].raLaPreLinkageValueRequest;
    trust.checkFresh(r.generationTime);
    if (toHex(r.laId) !== ownLaId) throw new ScmsHttpError(400, E.invalidContent, `request addressed to LA ${toHex(r.laId)}, this is LA ${ownLaId}`);
    const acaRefused = trust.check(r.acaCertificate, 'aca');
    if (acaRefused !== undefined) throw new ScmsHttpError(400, E.chainFailure, `acaCertificate refused: ${acaRefused}`);
    let chain: Pick<PreLinkageValuesRequest, 'chainId' | 'newChain'>;
    if ('existing' in r.chain) chain = { chainId: r.chain.existing };
    else if ('newChain' in r.chain) chain = { newChain: true };
    else throw new ScmsHttpError(400, E.invalidContent, 'unknown chain alternative');
    let res;
    try {
      res = await la.preLinkageValues({ ...chain, iRange: { first: r.iFirst, last: r.iLast }, jMax: r.jMax, acaCertificate: r.acaCertificate });
    } catch (e) {
      if (e instanceof LaError) throw new ScmsHttpError(400, E.invalidContent, e.message);
      throw e;
    }
    const answer = await signedLocalSpdu(
      scmsLocalPdu({
        'la-ra': {
          laRaPreLinkageValueResponse: {
            requestHash: sha256(body).slice(-8),
            laId: laIdOctets(res.laId),
            chainId: res.chainId,
            plvs: res.plvs.map((p) => ({ i: p.i, j: p.j, encPlv: p.encPlv })),
          },
        },
      }),
      signer,
      la.certificate,
    );
    audit(request.log, 'la.pre-linkage-values', {
      actor: `ra:${idOf(signerCertificate)}`,
      requestId: request.id,
      aca: idOf(r.acaCertificate),
      newChain: 'newChain' in r.chain,
      iFirst: r.iFirst,
      iLast: r.iLast,
      jMax: r.jMax,
    });
    return reply.code(200).type('application/octet-stream').send(Buffer.from(answer.buffer, answer.byteOffset, answer.byteLength));
  });

  app.post(LA_REVOCATION_SEED_PATH, opts, async (request, reply) => {
    if (!la.seedsForRevocation) throw new ScmsHttpError(404, E.undefined, 'this LA gives no revocation seeds');
    const body = octetStreamBody(request);
    const { pdu, signerCertificate } = trust.verify(body, RaLaRevocationSeedRequestSpduCodec, 'ra');
    const c = pdu.content;
    if (!('la-ra' in c) || !('raLaRevocationSeedRequest' in c['la-ra'])) throw new ScmsHttpError(400, E.invalidContent, 'not a RaLaRevocationSeedRequest');
    const r = c['la-ra'].raLaRevocationSeedRequest;
    trust.checkFresh(r.generationTime);
    if (toHex(r.laId) !== ownLaId) throw new ScmsHttpError(400, E.invalidContent, `request addressed to LA ${toHex(r.laId)}, this is LA ${ownLaId}`);
    let seed;
    try {
      seed = await la.seedsForRevocation(r.chainId, r.i);
    } catch (e) {
      if (e instanceof LaError) throw new ScmsHttpError(400, E.invalidContent, e.message);
      throw e;
    }
    const answer = await signedLocalSpdu(
      scmsLocalPdu({ 'la-ra': { laRaRevocationSeedResponse: { requestHash: sha256(body).slice(-8), laId: laIdOctets(seed.laId), i: r.i, linkageSeed: seed.linkageSeed } } }),
      signer,
      la.certificate,
    );
    audit(request.log, 'la.revocation-seed', { actor: `ra:${idOf(signerCertificate)}`, requestId: request.id, i: r.i });
    return reply.code(200).type('application/octet-stream').send(Buffer.from(answer.buffer, answer.byteOffset, answer.byteLength));
  });

  app.post(LA_ACA_KEY_PATH, opts, async (request, reply) => {
    const body = octetStreamBody(request);
    const { pdu, signerCertificate } = trust.verify(body, AcaLaPlvKeyRequestSpduCodec, 'aca');
    const c = pdu.content;
    if (!('aca-la' in c) || !('acaLaPlvKeyRequest' in c['aca-la'])) throw new ScmsHttpError(400, E.invalidContent, 'not an AcaLaPlvKeyRequest');
    const r = c['aca-la'].acaLaPlvKeyRequest;
    trust.checkFresh(r.generationTime);
    if (toHex(r.laId) !== ownLaId) throw new ScmsHttpError(400, E.invalidContent, `request addressed to LA ${toHex(r.laId)}, this is LA ${ownLaId}`);
    const delivery = await la.acaKeyDelivery(signerCertificate);
    audit(request.log, 'la.aca-key', { actor: `aca:${idOf(signerCertificate)}`, requestId: request.id });
    return reply.code(200).type('application/octet-stream').send(Buffer.from(delivery.buffer, delivery.byteOffset, delivery.byteLength));
  });
}
