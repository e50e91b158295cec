import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The shared fixtures (`../shared/fixtures` beside the repository), read as bytes. */
export const FIXTURES = fileURLToPath(new URL('../../../shared/fixtures/', import.meta.url));

/**
 * The tests' webhook key. Not the key of flux-events/SIGNATURES (`s3cr3t-hmac-key`, 15 bytes):
 * secrets refuse keys under 16 bytes (pipeline-secret.ts), so tests sign with this one.
 */
export const FIXTURE_HMAC_KEY = 's3cr3t-hmac-key-of-the-tests';

export const readFixture = (path: string): string => readFileSync(`${FIXTURES}${path}`, 'utf8');

/** A Flux event fixture's exact bytes with a fresh timestamp (Go's RFC 3339, no fraction). */
export const freshEvent = (name: string, at: Date = new Date()): string =>
  readFixture(`flux-events/${name}`).replace(
    /"timestamp":"[^"]+"/,
    `"timestamp":"${at.toISOString().replace(/\.\d{3}Z$/, 'Z')}"`,
  );
