// MAC1 with SHA-256 (IEEE 1363a; 1609.2 5.3.5): HMAC-SHA-256 with the tag truncated to 16 octets.
import { createHmac } from 'node:crypto';

export const MAC1_TAG_LENGTH = 16;

export function mac1(key: Uint8Array, message: Uint8Array): Uint8Array {
  return new Uint8Array(createHmac('sha256', key).update(message).digest().subarray(0, MAC1_TAG_LENGTH));
}
