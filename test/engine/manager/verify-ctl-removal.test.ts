// `scms manager verify` after CTL changes (1609.2.1 CtlInfo electorRemove / rootCaRemove), through the CTL engine
// the CLI uses (ctl-dir.ts proposeCtlChange -> signBallotAs -> assembleBallot; ctl.ts nextCtlBallot /
// signCtlBallot / assembleMultiSignedCtl underneath). A removed elector or root stays in the directory as history
// and is not reported; a certificate that chains only to a removed root is reported as untrusted.
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toHex } from '../../../src/crypto/bytes.js';
import { assembleBallot, proposeCtlChange, signBallotAs } from '../../../src/engine/manager/ctl-dir.js';
import type { CtlChange } from '../../../src/engine/manager/ctl.js';
import { initTrustDir } from '../../../src/engine/manager/init.js';
import { loadTrustDir, TrustDirWriter } from '../../../src/engine/manager/trust-dir.js';
import { verifyTrustDir } from '../../../src/engine/manager/verify.js';
import { certificateHashedId8, encodeCertificate } from '../../../src/security/certificate.js';
import { ManualClock } from '../../../src/security/time.js';
import { party, tempDir, type Party } from './ctl-fixtures.js';

const PASS = 'correct horse battery staple';
const clock = new ManualClock('2025-03-01T12:00:00Z');
const later = new ManualClock('2025-03-02T12:00:00Z');

let base: string;
let dir: string;
let root2: Party;

/** One CTL change voted by elector-1 and elector-2 (quorum 2) and assembled into the directory. */
async function vote(change: (td: ReturnType<typeof loadTrustDir>) => CtlChange): Promise<number> {
  const p = proposeCtlChange(dir, change(loadTrustDir(dir)), { clock: later });
  for (const e of ['elector-1', 'elector-2']) await signBallotAs(p.ballotDir, e, { clock: later, dir, keyStore: { passphrase: PASS } });
  return assembleBallot(dir, p.ballotDir, { clock: later }).sequenceNumber;
}

const problemsOf = (file: string) =>
  verifyTrustDir(dir, { clock: later })
    .problems.filter((p) => p.file === `trust/certs/${file}.oer`)
    .map((p) => p.reason);

beforeAll(async () => {
  base = tempDir('scms-verify-ctl-');
  dir = join(base, 'scms');
  await initTrustDir({ dir, keystore: 'file', keyStoreOptions: { passphrase: PASS }, electors: 3, quorum: 2, regions: [840], clock });
  // A second root, put in the directory (certificate only; its key lives elsewhere).
  root2 = await party(join(base, 'other-keys'), 'root-2');
  const td = loadTrustDir(dir);
  const w = new TrustDirWriter(dir, td.manifest);
  w.put('certs/root-2.oer', encodeCertificate(root2.cert), { role: 'certificate', name: 'root-2', certRole: 'root' });
  w.addComponent({ name: 'root-2', role: 'root', certificate: 'certs/root-2.oer', hashedId8: toHex(certificateHashedId8(root2.cert)), issuer: 'self', keyUri: root2.uri });
  w.writeManifest(clock.now());
}, 120_000);
afterAll(() => rmSync(base, { recursive: true, force: true }));

describe('verify after CTL removals', () => {
  it('add root-2 (CTL 2): the directory verifies', async () => {
    expect(problemsOf('root-2')).toEqual([expect.stringMatching(/root 'root-2' is not approved by the latest CTL/)]);
    expect(await vote(() => ({ addRoots: [root2.cert] }))).toBe(2);
    expect(verifyTrustDir(dir, { clock: later }).problems).toEqual([]);
  }, 60_000);

  it('remove-elector (CTL 3): the removed elector is history, not a problem', async () => {
    expect(await vote((td) => ({ removeElectors: [td.byName.get('elector-3')!.certificate!] }))).toBe(3);
    const r = verifyTrustDir(dir, { clock: later });
    expect(r.problems).toEqual([]);
    expect(r.ok).toBe(true);
  }, 60_000);

  it('remove-root (CTL 4): the removed root is not reported, everything chaining only to it is untrusted', async () => {
    expect(await vote((td) => ({ removeRoots: [td.byName.get('root')!.certificate!] }))).toBe(4);
    const r = verifyTrustDir(dir, { clock: later });
    expect(r.ok).toBe(false);
    expect(problemsOf('root')).toEqual([]);
    expect(problemsOf('root-2')).toEqual([]);
    expect(problemsOf('elector-3')).toEqual([]);
    const below = loadTrustDir(dir).certificates.filter((c) => c.issuer !== 'self').map((c) => c.name);
    expect(below).toEqual(expect.arrayContaining(['ica', 'eca', 'aca', 'ra', 'pg']));
    for (const n of below) expect(problemsOf(n), n).toEqual([`untrusted: chains only to root 'root', which CTL sequence 4 removed`]);
    // nothing else is reported
    expect(r.problems.every((p) => /^untrusted: /.test(p.reason))).toBe(true);
  }, 60_000);
});
