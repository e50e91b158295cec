import { describe, expect, it } from 'vitest';
import { PromoterError } from '../../functions/core/errors.ts';
import {
  approvalKeys,
  decodePipelineSecret,
  hasEnvironmentKeys,
  MIN_HMAC_KEY_BYTES,
  webhookKeys,
} from '../../functions/core/pipeline-secret.ts';

const REF = { namespace: 'flux-system', name: 'promotion-credentials' };

const refusal = (value: unknown): PromoterError => {
  try {
    decodePipelineSecret(REF, value);
  } catch (error) {
    if (error instanceof PromoterError) return error;
    throw error;
  }
  throw new Error('the secret was accepted');
};

describe('decodePipelineSecret: per-environment keys', () => {
  it('keeps hmac-key-{env} and hmac-key-{env}-previous apart from the shared keys', () => {
    // Prepare
    const value = {
      'hmac-key': 'approval-key-0123456789',
      'hmac-key-previous': 'approval-old-key-0123456789',
      'hmac-key-dev': 'dev-key-0123456789',
      'hmac-key-dev-previous': 'dev-old-key-0123456789',
      'hmac-key-staging-previous': 'staging-old-key-0123456789',
      token: 'ghp_token',
    };

    // Act
    const secret = decodePipelineSecret(REF, value);

    // Assess
    expect(secret.hmacKeys).toEqual(['approval-key-0123456789', 'approval-old-key-0123456789']);
    expect(webhookKeys(secret, 'dev')).toEqual(['dev-key-0123456789', 'dev-old-key-0123456789']);
    expect(webhookKeys(secret, 'staging')).toEqual(['staging-old-key-0123456789']);
    expect(webhookKeys(secret, 'prod')).toEqual(secret.hmacKeys);
    expect(approvalKeys(secret)).toEqual(secret.hmacKeys);
    expect(hasEnvironmentKeys(secret, 'dev')).toBe(true);
    expect(hasEnvironmentKeys(secret, 'prod')).toBe(false);
  });

  it('never takes a property of Object for an environment key, nor "previous" for an environment', () => {
    // Prepare
    const secret = decodePipelineSecret(REF, {
      'hmac-key': 'approval-key-0123456789',
      'hmac-key-previous': 'approval-old-key-0123456789',
    });

    // Act & Assess
    expect(webhookKeys(secret, 'constructor')).toEqual(secret.hmacKeys);
    expect(webhookKeys(secret, 'previous')).toEqual(secret.hmacKeys);
    expect(secret).not.toHaveProperty('environmentHmacKeys');
  });
});

describe('decodePipelineSecret: refusals name the key, never the value', () => {
  it.each([
    ['hmac-key', ''],
    ['hmac-key', 'short-key'],
    ['hmac-key-previous', 'x'.repeat(MIN_HMAC_KEY_BYTES - 1)],
    ['hmac-key-dev', 'tiny'],
    ['hmac-key-dev-previous', ''],
  ])('%s of %j is INVALID_SECRET', (key, value) => {
    // Act
    const error = refusal({ 'hmac-key': 'approval-key-0123456789', [key]: value });

    // Assess
    expect(error.code).toBe('INVALID_SECRET');
    expect(error.retryable).toBe(false);
    expect(error.message).toContain('flux-system/promotion-credentials');
    expect(error.message).toContain(`${key}: expected an HMAC key of at least 16 bytes`);
    if (value !== '') expect(error.message).not.toContain(value);
  });

  it('counts bytes, not characters: 16 bytes of UTF-8 pass', () => {
    // Act
    const secret = decodePipelineSecret(REF, { 'hmac-key': 'ééééééééé'.slice(0, 8) });

    // Assess
    expect(secret.hmacKeys).toHaveLength(1);
  });

  it('refuses an hmac-key-… key that names no environment, and a key that is not a string', () => {
    // Act
    const upper = refusal({ 'hmac-key-Dev': 'dev-key-0123456789' });
    const number = refusal({ 'hmac-key-dev': 1234 });

    // Assess
    expect(upper.message).toContain('"hmac-key-Dev": expected hmac-key-{environment}');
    expect(upper.message).not.toContain('dev-key-0123456789');
    expect(number.message).toContain('hmac-key-dev: expected a string');
  });

  it('reports every problem at once', () => {
    // Act
    const error = refusal({ 'hmac-key': 'short', 'hmac-key-dev': 'short', username: 'bot' });

    // Assess
    expect(error.message).toContain('hmac-key: expected');
    expect(error.message).toContain('hmac-key-dev: expected');
    expect(error.message).not.toContain('short,');
  });
});

describe('decodePipelineSecret: GitHub App keys (Flux notification-controller names)', () => {
  const PEM = [
    '-----BEGIN RSA PRIVATE KEY-----',
    'MIIEowIBAAKCAQEAtestkeynotarealkey0123456789',
    '-----END RSA PRIVATE KEY-----',
    '',
  ].join('\n');

  it('reads githubAppID, githubAppPrivateKey, githubAppInstallationID and githubAppBaseURL', () => {
    // Act
    const secret = decodePipelineSecret(REF, {
      'hmac-key': 'approval-key-0123456789',
      githubAppID: '123456',
      githubAppInstallationID: 7890,
      githubAppPrivateKey: PEM,
      githubAppBaseURL: 'https://github.example.com/api/v3/',
    });

    // Assess
    expect(secret.githubApp).toEqual({
      appId: 123456,
      installationId: 7890,
      privateKey: PEM,
      baseUrl: 'https://github.example.com/api/v3',
    });
    expect(secret).not.toHaveProperty('token');
  });

  it('needs neither the installation nor the base URL, and turns escaped newlines into newlines', () => {
    // Act
    const secret = decodePipelineSecret(REF, {
      githubAppID: 42,
      githubAppPrivateKey: PEM.replaceAll('\n', '\\n'),
    });

    // Assess
    expect(secret.githubApp).toEqual({ appId: 42, privateKey: PEM });
  });

  it.each([
    [{ githubAppID: '123' }, 'githubAppPrivateKey: expected githubAppPrivateKey with the other'],
    [{ githubAppPrivateKey: PEM }, 'githubAppID: expected githubAppID with githubAppPrivateKey'],
    [
      { githubAppInstallationID: '5', token: 'ghp_x' },
      'githubAppPrivateKey: expected githubAppPrivateKey with the other',
    ],
    [
      { githubAppID: 'app-1', githubAppPrivateKey: PEM },
      'githubAppID: expected a positive integer',
    ],
    [{ githubAppID: 0, githubAppPrivateKey: PEM }, 'githubAppID: expected a positive integer'],
    [
      { githubAppID: '1', githubAppInstallationID: '-3', githubAppPrivateKey: PEM },
      'githubAppInstallationID: expected a positive integer',
    ],
    [
      { githubAppID: '1', githubAppPrivateKey: 'ssh-rsa AAAAB3NzaC1yc2E private-looking-text' },
      "githubAppPrivateKey: expected the GitHub App's private key in PEM",
    ],
    [
      {
        githubAppID: '1',
        githubAppPrivateKey: PEM,
        githubAppBaseURL: 'http://github.example.com/api/v3',
      },
      'githubAppBaseURL: expected the GitHub API base URL, https://',
    ],
  ])('refuses %j naming the key', (value, message) => {
    // Act
    const error = refusal(value);

    // Assess
    expect(error.code).toBe('INVALID_SECRET');
    expect(error.message).toContain('secret flux-system/promotion-credentials is invalid');
    expect(error.message).toContain(message);
    expect(error.message).not.toContain('MIIEowIBAAKCAQEA');
    expect(error.message).not.toContain('private-looking-text');
  });
});
