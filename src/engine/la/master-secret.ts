import { hkdfSync } from 'node:crypto';
import type { KeyStores } from '../../hsm/index.js';
import { laIdOctets } from './la.js';

/**
 * An LA's master secret (the seed of its linkage seeds, la.ts), never stored: HKDF-SHA256 over x(d * Q) where d
 * is the LA's signing key and Q its own public key. Only the key holder can compute it, it is stable for the life
 * of the key, and it works for soft and PKCS#11 keys alike (a plain ECDH derive; the scalar never leaves the token).
 * Info binds the laId, so LA1 and LA2 differ even if they were to share a key. `scms serve` and `scms provision`
 * both derive it here, so served LAs continue the linkage chains of provisioned devices.
 */
export async function laMasterSecret(stores: KeyStores, keyUri: string, laId: number): Promise<Uint8Array> {
  const handle = await stores.open(keyUri);
  const z = await stores.ecdh(keyUri, handle.publicKey);
  try {
    const info = new Uint8Array([...new TextEncoder().encode('scms-la/master-secret/v1'), ...laIdOctets(laId)]);
    return new Uint8Array(hkdfSync('sha256', z, new Uint8Array(0), info, 32));
  } finally {
    z.fill(0);
  }
}
