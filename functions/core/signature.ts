import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * The `X-Signature: <algo>=<hex>` check of Flux's generic-hmac Provider: an HMAC of the raw
 * body bytes, compared in constant time against every accepted key (current, then previous).
 */
const DIGEST_BYTES = { sha256: 32, sha384: 48, sha512: 64 } as const;
type Algorithm = keyof typeof DIGEST_BYTES;

/** Where Flux's generic-hmac provider puts the signature (header names in lower case). */
export const SIGNATURE_HEADER = 'x-signature';

/** What a refused signature's answer tells the sender to send. */
export const SIGNATURE_EXPECTED = 'expected X-Signature: sha256=<hex HMAC of the body>';

export type SignatureFailure = 'missing' | 'malformed' | 'unsupported-algorithm' | 'mismatch';

export type SignatureCheck =
  | { readonly valid: true; readonly algorithm: Algorithm; readonly keyIndex: number }
  | { readonly valid: false; readonly failure: SignatureFailure };

const HEX = /^[0-9a-fA-F]+$/;

export const signBody = (body: Uint8Array | string, key: string, algorithm: Algorithm = 'sha256') =>
  `${algorithm}=${createHmac(algorithm, key).update(body).digest('hex')}`;

export const verifySignature = (
  body: Uint8Array,
  header: string | undefined,
  keys: readonly string[],
): SignatureCheck => {
  if (header === undefined || header.trim() === '') return { valid: false, failure: 'missing' };
  const separator = header.indexOf('=');
  if (separator < 0) return { valid: false, failure: 'malformed' };
  const algorithm = header.slice(0, separator).trim().toLowerCase();
  const hex = header.slice(separator + 1).trim();
  if (!Object.hasOwn(DIGEST_BYTES, algorithm)) {
    return { valid: false, failure: 'unsupported-algorithm' };
  }
  const known = algorithm as Algorithm;
  if (hex.length !== DIGEST_BYTES[known] * 2 || !HEX.test(hex)) {
    return { valid: false, failure: 'malformed' };
  }
  const expected = Buffer.from(hex, 'hex');
  let match = -1;
  // Every key is tried even after a match, so that timing says nothing about which one matched.
  keys.forEach((key, index) => {
    const actual = createHmac(known, key).update(body).digest();
    if (timingSafeEqual(actual, expected) && match < 0) match = index;
  });
  return match < 0
    ? { valid: false, failure: 'mismatch' }
    : { valid: true, algorithm: known, keyIndex: match };
};
