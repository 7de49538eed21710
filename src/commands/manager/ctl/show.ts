import { existsSync, statSync } from 'node:fs';
import { Args, Command } from '@oclif/core';
import { readEncodedInput } from '../../../cli/input.js';
import type { Certificate } from '../../../codec/gen/Ieee1609Dot2.js';
import type { FullIeeeTbsCtl } from '../../../codec/gen/Ieee1609Dot2Dot1CertManagement.js';
import { toHex } from '../../../crypto/bytes.js';
import { certificateLabel, decodeMultiSignedCtl, electorHash, rootCaHash } from '../../../engine/manager/ctl.js';
import { describeSignatureFile, readBallot } from '../../../engine/manager/ctl-dir.js';
import { time32ToDate } from '../../../security/time.js';

interface Entry {
  entry: string;
  certificate?: string;
}

export interface CtlView {
  kind: 'MultiSignedCtlSpdu' | 'ballot' | 'CtlSignatureSpdu';
  ctlSeriesId: string;
  sequenceNumber: number;
  effectiveDate?: string;
  quorum?: number | null;
  electorApprove?: Entry[];
  electorRemove?: Entry[];
  rootCaApprove?: Entry[];
  rootCaRemove?: Entry[];
  unsigned?: string[];
  signatures?: Array<{ signer: string; tbsCtlHash: string } | { error: string }>;
  signer?: string;
  tbsCtlHash?: string;
}

function tbsView(tbs: FullIeeeTbsCtl, unsigned: Certificate[]): Omit<CtlView, 'kind'> {
  const byElector = new Map(unsigned.map((c) => [toHex(electorHash(c)), certificateLabel(c)]));
  const byRoot = new Map(unsigned.map((c) => [toHex(rootCaHash(c)), certificateLabel(c)]));
  const entries = (list: Uint8Array[], names: Map<string, string>): Entry[] =>
    list.map((h) => ({ entry: toHex(h), ...(names.has(toHex(h)) ? { certificate: names.get(toHex(h)) } : {}) }));
  return {
    ctlSeriesId: toHex(tbs.ctlSeriesId),
    sequenceNumber: tbs.sequenceNumber,
    effectiveDate: time32ToDate(tbs.effectiveDate).toISOString(),
    quorum: tbs.quorum === undefined ? null : Number(tbs.quorum),
    electorApprove: entries(tbs.electorApprove, byElector),
    electorRemove: entries(tbs.electorRemove, byElector),
    rootCaApprove: entries(tbs.rootCaApprove, byRoot),
    rootCaRemove: entries(tbs.rootCaRemove, byRoot),
    unsigned: unsigned.map(certificateLabel),
  };
}

/** `scms manager ctl show FILE`: a CTL, a ballot or an elector signature, decoded (no trust decision). */
export default class CtlShow extends Command {
  static override description =
    'Show a CTL (MultiSignedCtlSpdu), a ballot (directory or ballot.json) or an elector signature (CtlSignatureSpdu). ' +
    'Decoding only: use `scms manager ctl verify` for signatures and the quorum.';
  static override enableJsonFlag = true;
  static override examples = [
    '<%= config.bin %> manager ctl show ./scms/trust/ctl/ctl_0102030405060708_1.oer',
    '<%= config.bin %> manager ctl show ./scms/trust/ctl/ballot-2 --json',
  ];
  static override args = { file: Args.string({ description: 'CTL, ballot or signature file', required: true }) };

  async run(): Promise<CtlView> {
    const { args } = await this.parse(CtlShow);
    const view = this.view(args.file);
    this.log(`${view.kind}: CTL series ${view.ctlSeriesId}, sequence ${view.sequenceNumber}`);
    if (view.effectiveDate) this.log(`  effectiveDate ${view.effectiveDate}, quorum for the next CTL ${view.quorum ?? '(unchanged)'}`);
    const list = (title: string, l?: Entry[]) => {
      if (!l) return;
      this.log(`  ${title} (${l.length})`);
      for (const e of l) this.log(`    ${e.entry}${e.certificate ? `  ${e.certificate}` : ''}`);
    };
    list('electorApprove', view.electorApprove);
    list('electorRemove', view.electorRemove);
    list('rootCaApprove', view.rootCaApprove);
    list('rootCaRemove', view.rootCaRemove);
    if (view.unsigned) this.log(`  unsigned certificates: ${view.unsigned.join(', ') || '(none)'}`);
    if (view.signatures) {
      this.log(`  signatures (${view.signatures.length})`);
      for (const s of view.signatures) this.log(`    ${'error' in s ? `undecodable: ${s.error}` : s.signer}`);
    }
    if (view.signer) this.log(`  signed by ${view.signer}, tbsCtlHash ${view.tbsCtlHash}`);
    return view;
  }

  private view(file: string): CtlView {
    if (!existsSync(file)) this.error(`${file}: no such file`, { exit: 2 });
    if (statSync(file).isDirectory() || file.endsWith('.json')) {
      try {
        const b = readBallot(file);
        return { kind: 'ballot', ...tbsView(b.tbsCtl, b.unsigned) };
      } catch (e) {
        this.error((e as Error).message, { exit: 2 });
      }
    }
    const { bytes } = readEncodedInput(file);
    let ctlError: string;
    try {
      const ctl = decodeMultiSignedCtl(bytes);
      return {
        kind: 'MultiSignedCtlSpdu',
        ...tbsView(ctl.tbsCtl, ctl.unsigned),
        signatures: ctl.signatures.map((s) => {
          try {
            const d = describeSignatureFile(s);
            return { signer: d.signer, tbsCtlHash: d.tbsCtlHash };
          } catch (e) {
            return { error: (e as Error).message };
          }
        }),
      };
    } catch (e) {
      ctlError = (e as Error).message;
    }
    try {
      const d = describeSignatureFile(bytes);
      return { kind: 'CtlSignatureSpdu', ctlSeriesId: d.ctlSeriesId, sequenceNumber: d.sequenceNumber, signer: d.signer, tbsCtlHash: d.tbsCtlHash };
    } catch (e) {
      this.error(`${file}: neither a MultiSignedCtlSpdu (${ctlError}) nor a CtlSignatureSpdu (${(e as Error).message})`, { exit: 2 });
    }
  }
}
