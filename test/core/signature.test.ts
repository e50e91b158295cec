import { describe, expect, it } from 'vitest';
import {
  approvalKeys,
  decodePipelineSecret,
  webhookKeys,
} from '../../functions/core/pipeline-secret.ts';
import { signBody, verifySignature } from '../../functions/core/signature.ts';
import { FIXTURE_HMAC_KEY, readFixture } from '../support/fixtures.ts';

const SIGNATURES = readFixture('flux-events/SIGNATURES');
const signatures = SIGNATURES.split('\n')
  .filter((line) => line !== '' && !line.startsWith('#'))
  .map((line) => line.split(' ') as [string, string]);
/** The key the shared fixtures were signed with, from the file's header line. */
const SIGNATURES_KEY = /with the key: (\S+)/.exec(SIGNATURES)?.[1] ?? '';

describe('verifySignature', () => {
  it.each(signatures)('accepts Flux signature of %s over its exact bytes', (file, header) => {
    // Prepare
    const body = Buffer.from(readFixture(`flux-events/${file}`));

    // Act
    const check = verifySignature(body, header, [SIGNATURES_KEY]);

    // Assess
    expect(check).toEqual({ valid: true, algorithm: 'sha256', keyIndex: 0 });
    expect(signBody(body, SIGNATURES_KEY)).toBe(header);
  });

  it("matches GitHub's published test vector", () => {
    // Prepare: docs.github.com "Validating webhook deliveries"
    const body = Buffer.from('Hello, World!');
    const header = 'sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17';

    // Act & Assess
    expect(verifySignature(body, header, ["It's a Secret to Everybody"]).valid).toBe(true);
  });

  it('accepts sha384, sha512, upper-case hex and the previous key', () => {
    const body = Buffer.from('{"a":1}');
    expect(verifySignature(body, signBody(body, 'k', 'sha384'), ['k'])).toMatchObject({
      valid: true,
      algorithm: 'sha384',
    });
    expect(
      verifySignature(
        body,
        signBody(body, 'k', 'sha512').toUpperCase().replace('SHA512', 'sha512'),
        ['k'],
      ).valid,
    ).toBe(true);
    expect(verifySignature(body, signBody(body, 'old'), ['new', 'old'])).toMatchObject({
      valid: true,
      keyIndex: 1,
    });
  });

  it.each([
    [undefined, 'missing'],
    ['', 'missing'],
    ['deadbeef', 'malformed'],
    ['sha256=zz', 'malformed'],
    [`sha256=${'0'.repeat(63)}`, 'malformed'],
    [`sha1=${'0'.repeat(40)}`, 'unsupported-algorithm'],
    [`md5=${'0'.repeat(32)}`, 'unsupported-algorithm'],
    [`sha256=${'0'.repeat(64)}`, 'mismatch'],
  ])('refuses %s as %s', (header, failure) => {
    expect(verifySignature(Buffer.from('{}'), header, ['k'])).toEqual({ valid: false, failure });
  });

  it('refuses everything when there is no key', () => {
    const body = Buffer.from('{}');
    expect(verifySignature(body, signBody(body, ''), [])).toEqual({
      valid: false,
      failure: 'mismatch',
    });
  });

  it('refuses a body changed by one byte (re-serialised JSON does not verify)', () => {
    const body = readFixture('flux-events/helmrelease-upgrade-succeeded.json');
    const header = signBody(body, FIXTURE_HMAC_KEY);
    const reserialised = JSON.stringify(JSON.parse(body));
    expect(verifySignature(Buffer.from(reserialised), header, [FIXTURE_HMAC_KEY]).valid).toBe(
      false,
    );
  });
});

describe('verifySignature with the keys of an environment (DESIGN.md section 4)', () => {
  const secret = decodePipelineSecret(
    { namespace: 'flux-system', name: 'promotion-credentials' },
    {
      'hmac-key': 'approval-key-0123456789',
      'hmac-key-dev': 'dev-key-0123456789',
      'hmac-key-staging': 'staging-key-0123456789',
      'hmac-key-staging-previous': 'staging-old-key-0123456789',
    },
  );
  const body = Buffer.from(readFixture('flux-events/helmrelease-upgrade-succeeded.json'));

  it("accepts an environment's own key and its previous one, current first", () => {
    // Act
    const current = verifySignature(
      body,
      signBody(body, 'staging-key-0123456789'),
      webhookKeys(secret, 'staging'),
    );
    const previous = verifySignature(
      body,
      signBody(body, 'staging-old-key-0123456789'),
      webhookKeys(secret, 'staging'),
    );

    // Assess
    expect(current).toMatchObject({ valid: true, keyIndex: 0 });
    expect(previous).toMatchObject({ valid: true, keyIndex: 1 });
  });

  it("refuses another environment's key and the shared key for an environment with its own", () => {
    // Prepare
    const devSigned = signBody(body, 'dev-key-0123456789');
    const sharedSigned = signBody(body, 'approval-key-0123456789');

    // Act
    const devOnStaging = verifySignature(body, devSigned, webhookKeys(secret, 'staging'));
    const sharedOnDev = verifySignature(body, sharedSigned, webhookKeys(secret, 'dev'));
    const devOnApproval = verifySignature(body, devSigned, approvalKeys(secret));

    // Assess
    expect([devOnStaging, sharedOnDev, devOnApproval]).toEqual([
      { valid: false, failure: 'mismatch' },
      { valid: false, failure: 'mismatch' },
      { valid: false, failure: 'mismatch' },
    ]);
  });

  it('falls back to the shared key for an environment without its own, as approvals always do', () => {
    // Prepare
    const sharedSigned = signBody(body, 'approval-key-0123456789');

    // Act
    const prod = verifySignature(body, sharedSigned, webhookKeys(secret, 'prod'));
    const approval = verifySignature(body, sharedSigned, approvalKeys(secret));

    // Assess
    expect(prod.valid).toBe(true);
    expect(approval.valid).toBe(true);
  });
});
