/**
 * Type-level checks of the generated TypeScript types, compiled by types.test.ts with `tsc -p` (not run).
 * Every `@ts-expect-error` must be an error, every other line must compile.
 */
import {
  Certificate,
  CertIssueExtension,
  CtlSignatureSpdu,
  HeaderInfo,
  PsidSsp,
  type EtsiOriginatingHeaderInfoExtension,
  type SignerIdentifier,
} from '../../../../src/codec/gen/index.js';
import type { UnknownExtensions } from '../../../../src/codec/schema.js';

declare const bytes: Uint8Array;

// 3. Extensible SEQUENCEs declare $unknownExtensions as the runtime keeps it: typed code carries them through.
const header: HeaderInfo = HeaderInfo.decode(bytes);
const kept: UnknownExtensions | undefined = header.$unknownExtensions;
const rebuilt: HeaderInfo = { psid: header.psid, $unknownExtensions: kept };
HeaderInfo.encode({ ...rebuilt, $unknownExtensions: [null, new Uint8Array(2)] });
// @ts-expect-error entries are octets or null, not hex
HeaderInfo.encode({ psid: 1n, $unknownExtensions: ['00'] });
// @ts-expect-error PsidSsp is not extensible
const closed: PsidSsp = { psid: 1n, $unknownExtensions: [] };
void closed;
const tbs = Certificate.decode(bytes).toBeSigned;
const tbsExt: UnknownExtensions | undefined = tbs.$unknownExtensions;
void tbsExt;
const etsi: EtsiOriginatingHeaderInfoExtension | undefined = undefined;
void etsi;

// 4. A restricted CHOICE equal to its parent is the parent's type (unknown alternatives allowed) and narrows.
declare const signer: SignerIdentifier;
if ('certificate' in signer) signer.certificate.length;
else if ('digest' in signer) signer.digest.byteLength;
else if ('self' in signer) signer.self satisfies null;
else signer.$unknown.tag satisfies number;
// A restricted CHOICE that excludes alternatives has neither those nor $unknown.
type CtlSigner = Extract<CtlSignatureSpdu['content'], { signedData: unknown }>['signedData']['signer'];
const single: CtlSigner = { certificate: [] };
void single;
// @ts-expect-error digest is excluded by SignerSingleCert
const digest: CtlSigner = { digest: new Uint8Array(8) };
void digest;

// 1. The open type inside a CHOICE is typed by its table.
const issue: CertIssueExtension = { id: 1, permissions: { specific: null } };
void issue;
