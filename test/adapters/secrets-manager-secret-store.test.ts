import { randomUUID } from 'node:crypto';
import { DeleteSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { SecretsManagerSecretStore } from '../../functions/adapters/secrets-manager-secret-store.ts';
import { PromoterError } from '../../functions/core/errors.ts';
import type { Clock } from '../../functions/core/ports.ts';
import { createTestSecret } from '../support/aws-test-resources.ts';
import { awsClientConfig } from '../support/moto-server.ts';
import { describeSecretStoreContract } from './secret-store.contract.ts';

/** A clock the test moves by hand. */
class ManualClock implements Clock {
  private time = Date.parse('2026-11-02T10:00:00Z');
  now(): Date {
    return new Date(this.time);
  }
  advance(ms: number): void {
    this.time += ms;
  }
}

describe('SecretsManagerSecretStore (moto)', () => {
  let client: SecretsManagerClient;
  let getSecretValueCalls = 0;

  beforeAll(() => {
    client = new SecretsManagerClient(awsClientConfig(inject('motoEndpoint')));
    // Count the GetSecretValue requests that leave the client.
    client.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'GetSecretValueCommand') getSecretValueCalls += 1;
        return next(args);
      },
      { step: 'initialize', name: 'countGetSecretValue' },
    );
  });
  afterAll(() => client.destroy());

  describeSecretStoreContract('SecretsManagerSecretStore', async (secrets) => {
    // A prefix of its own: the contract's secret names are the same in every test.
    const prefix = `contract-${randomUUID()}/`;
    for (const [id, value] of Object.entries(secrets)) {
      await createTestSecret(client, `${prefix}${id}`, value as object);
    }
    return new SecretsManagerSecretStore(client, { prefix });
  });

  /** A unique namespace per test, so that tests share the server and nothing else. */
  const uniqueNamespace = (): string => `ns-${randomUUID()}`;

  const createSecret = (name: string, value: string): Promise<void> =>
    createTestSecret(client, name, value);

  const callsDuring = async (work: () => Promise<unknown>): Promise<number> => {
    const before = getSecretValueCalls;
    await work();
    return getSecretValueCalls - before;
  };

  it('reads pipeline-promoter/NS/S and decodes it, previous HMAC key included', async () => {
    // Prepare
    const namespace = uniqueNamespace();
    await createSecret(
      `pipeline-promoter/${namespace}/promotion-credentials`,
      JSON.stringify({
        'hmac-key': 'current-hmac-key-for-tests',
        'hmac-key-previous': 'previous-hmac-key-for-tests',
        token: 'ghp_token',
        username: 'bot',
        password: 'git-password',
      }),
    );
    const store = new SecretsManagerSecretStore(client);

    // Act
    const secret = await store.get({ namespace, name: 'promotion-credentials' });

    // Assess
    expect(secret).toEqual({
      hmacKeys: ['current-hmac-key-for-tests', 'previous-hmac-key-for-tests'],
      token: 'ghp_token',
      git: { username: 'bot', password: 'git-password' },
    });
  });

  it('honours a configured prefix', async () => {
    // Prepare
    const namespace = uniqueNamespace();
    await createSecret(
      `custom/${namespace}/hmac`,
      JSON.stringify({ 'hmac-key': 'hmac-key-for-tests' }),
    );
    const store = new SecretsManagerSecretStore(client, { prefix: 'custom/' });

    // Act
    const secret = await store.get({ namespace, name: 'hmac' });

    // Assess
    expect(store.secretName({ namespace, name: 'hmac' })).toBe(`custom/${namespace}/hmac`);
    expect(secret.hmacKeys).toEqual(['hmac-key-for-tests']);
  });

  it('serves a second get within the TTL from memory and fetches again after it', async () => {
    // Prepare
    const namespace = uniqueNamespace();
    await createSecret(
      `pipeline-promoter/${namespace}/hmac`,
      JSON.stringify({ 'hmac-key': 'hmac-key-for-tests' }),
    );
    const clock = new ManualClock();
    const store = new SecretsManagerSecretStore(client, { ttlMs: 60_000, clock });
    const ref = { namespace, name: 'hmac' };

    // Act
    const first = await callsDuring(() => store.get(ref));
    clock.advance(59_999);
    const withinTtl = await callsDuring(() => store.get(ref));
    clock.advance(1);
    const afterTtl = await callsDuring(() => store.get(ref));

    // Assess
    expect([first, withinTtl, afterTtl]).toEqual([1, 0, 1]);
  });

  it('shares one request between concurrent gets of the same secret', async () => {
    // Prepare
    const namespace = uniqueNamespace();
    await createSecret(
      `pipeline-promoter/${namespace}/hmac`,
      JSON.stringify({ 'hmac-key': 'hmac-key-for-tests' }),
    );
    const store = new SecretsManagerSecretStore(client);
    const ref = { namespace, name: 'hmac' };

    // Act
    let results: unknown[] = [];
    const calls = await callsDuring(async () => {
      results = await Promise.all([store.get(ref), store.get(ref), store.get(ref)]);
    });

    // Assess
    expect(calls).toBe(1);
    expect(results).toHaveLength(3);
    expect(new Set(results).size).toBe(1);
  });

  it('answers a missing secret with SECRET_NOT_FOUND naming the secret and how to create it', async () => {
    // Prepare
    const namespace = uniqueNamespace();
    const store = new SecretsManagerSecretStore(client);

    // Act
    const error = await store.get({ namespace, name: 'absent' }).catch((caught: unknown) => caught);

    // Assess
    expect(error).toBeInstanceOf(PromoterError);
    expect(error).toMatchObject({ code: 'SECRET_NOT_FOUND', retryable: false });
    const { message } = error as PromoterError;
    expect(message).toContain(`pipeline-promoter/${namespace}/absent`);
    expect(message).toContain('create-secret');
  });

  it('answers invalid JSON with INVALID_SECRET without the secret text, cached as a failure', async () => {
    // Prepare
    const namespace = uniqueNamespace();
    const leaky = '{"hmac-key": "super-secret-value", oops';
    await createSecret(`pipeline-promoter/${namespace}/broken`, leaky);
    const clock = new ManualClock();
    const store = new SecretsManagerSecretStore(client, { clock });
    const ref = { namespace, name: 'broken' };

    // Act
    const error = await store.get(ref).catch((caught: unknown) => caught);
    const withinFailureTtl = await callsDuring(() => store.get(ref).catch(() => undefined));
    clock.advance(5_000);
    const afterFailureTtl = await callsDuring(() => store.get(ref).catch(() => undefined));

    // Assess
    expect(error).toMatchObject({ code: 'INVALID_SECRET', retryable: false });
    const { message, data } = error as PromoterError;
    expect(message).toContain(`pipeline-promoter/${namespace}/broken`);
    expect(message).not.toContain('super-secret-value');
    expect(JSON.stringify(data)).not.toContain('super-secret-value');
    expect([withinFailureTtl, afterFailureTtl]).toEqual([0, 1]);
  });

  it('answers a missing secret from memory for 5 s, then asks Secrets Manager again', async () => {
    // Prepare
    const namespace = uniqueNamespace();
    const clock = new ManualClock();
    const store = new SecretsManagerSecretStore(client, { clock });
    const ref = { namespace, name: 'late' };
    const codeOf = (work: Promise<unknown>) =>
      work.then(
        () => 'found',
        (error: unknown) => (error as PromoterError).code,
      );

    // Act: unsigned requests keep coming; the secret is created within the 5 s.
    const codes: string[] = [];
    const first = await callsDuring(async () => {
      codes.push(await codeOf(store.get(ref)));
    });
    await createSecret(
      `pipeline-promoter/${namespace}/late`,
      JSON.stringify({ 'hmac-key': 'hmac-key-for-tests' }),
    );
    const withinFailureTtl = await callsDuring(async () => {
      for (let request = 0; request < 5; request += 1) {
        clock.advance(999);
        codes.push(await codeOf(store.get(ref)));
      }
    });
    clock.advance(5);
    const afterFailureTtl = await callsDuring(async () => {
      codes.push(await codeOf(store.get(ref)));
    });

    // Assess
    expect([first, withinFailureTtl, afterFailureTtl]).toEqual([1, 0, 1]);
    expect(codes).toEqual([...Array<string>(6).fill('SECRET_NOT_FOUND'), 'found']);
  });

  it('does not cache a permanent failure with failureTtlMs 0, nor a transient one', async () => {
    // Prepare: a missing secret; an unreachable endpoint (one attempt), its requests counted.
    const namespace = uniqueNamespace();
    const uncached = new SecretsManagerSecretStore(client, { failureTtlMs: 0 });
    const unreachable = new SecretsManagerClient({
      ...awsClientConfig('http://127.0.0.1:9'),
      maxAttempts: 1,
    });
    let unreachableCalls = 0;
    unreachable.middlewareStack.add(
      (next) => async (args) => {
        unreachableCalls += 1;
        return next(args);
      },
      { step: 'initialize', name: 'countCalls' },
    );
    const transient = new SecretsManagerSecretStore(unreachable);
    const ref = { namespace, name: 'absent' };

    // Act
    const permanentCalls = await callsDuring(async () => {
      await uncached.get(ref).catch(() => undefined);
      await uncached.get(ref).catch(() => undefined);
    });
    const errors = [
      await transient.get(ref).catch((caught: unknown) => caught),
      await transient.get(ref).catch((caught: unknown) => caught),
    ];
    unreachable.destroy();

    // Assess
    expect(permanentCalls).toBe(2);
    expect(errors).toMatchObject([
      { code: 'SECRET_UNAVAILABLE', retryable: true },
      { code: 'SECRET_UNAVAILABLE', retryable: true },
    ]);
    expect(unreachableCalls).toBe(2);
  });

  it('answers a secret scheduled for deletion with a permanent error naming it and what to do', async () => {
    // Prepare
    const namespace = uniqueNamespace();
    const id = `pipeline-promoter/${namespace}/deleted`;
    await createSecret(id, JSON.stringify({ 'hmac-key': 'deleted-key-value' }));
    await client.send(new DeleteSecretCommand({ SecretId: id, RecoveryWindowInDays: 7 }));
    const store = new SecretsManagerSecretStore(client);

    // Act
    const error = await store
      .get({ namespace, name: 'deleted' })
      .catch((caught: unknown) => caught);

    // Assess
    expect(error).toMatchObject({ code: 'SECRET_INACCESSIBLE', retryable: false });
    const { message } = error as PromoterError;
    expect(message).toContain(id);
    expect(message).toContain('restore-secret');
    expect(message).toContain('InvalidRequestException');
    expect(message).not.toContain('deleted-key-value');
  });

  it.each([
    ['AccessDeniedException', 'secretsmanager:GetSecretValue'],
    ['DecryptionFailure', 'KMS key'],
  ])(
    'answers %s with a permanent error naming the secret and what to check',
    async (name, hint) => {
      // Prepare: moto does not enforce IAM or KMS; the service's error comes from a middleware.
      const denied = new SecretsManagerClient(awsClientConfig(inject('motoEndpoint')));
      denied.middlewareStack.add(
        () => async () => {
          throw Object.assign(new Error(`the service says ${name}`), { name });
        },
        { step: 'finalizeRequest', name: 'serviceError' },
      );
      const store = new SecretsManagerSecretStore(denied);

      // Act
      const error = await store
        .get({ namespace: 'flux-system', name: 'hmac' })
        .catch((caught: unknown) => caught);
      denied.destroy();

      // Assess
      expect(error).toMatchObject({
        code: 'SECRET_INACCESSIBLE',
        retryable: false,
        data: { secret: 'pipeline-promoter/flux-system/hmac', error: name },
      });
      const { message } = error as PromoterError;
      expect(message).toContain('pipeline-promoter/flux-system/hmac');
      expect(message).toContain(hint);
    },
  );

  it('answers a value with a wrong key type with INVALID_SECRET naming the key, not the value', async () => {
    // Prepare
    const namespace = uniqueNamespace();
    await createSecret(
      `pipeline-promoter/${namespace}/typed`,
      JSON.stringify({ 'hmac-key': 'fine-hmac-key-for-tests', username: 'only-user-no-password' }),
    );
    const store = new SecretsManagerSecretStore(client);

    // Act
    const error = await store.get({ namespace, name: 'typed' }).catch((caught: unknown) => caught);

    // Assess
    expect(error).toMatchObject({ code: 'INVALID_SECRET' });
    const { message } = error as PromoterError;
    expect(message).toContain('password');
    expect(message).not.toContain('fine-hmac-key-for-tests');
    expect(message).not.toContain('only-user-no-password');
  });

  it('answers an unreachable Secrets Manager with SECRET_UNAVAILABLE, retryable', async () => {
    // Prepare: a loopback port nothing listens on, one attempt.
    const unreachable = new SecretsManagerClient({
      ...awsClientConfig('http://127.0.0.1:9'),
      maxAttempts: 1,
    });
    const store = new SecretsManagerSecretStore(unreachable);

    // Act
    const error = await store
      .get({ namespace: 'flux-system', name: 'hmac' })
      .catch((caught: unknown) => caught);
    unreachable.destroy();

    // Assess
    expect(error).toMatchObject({ code: 'SECRET_UNAVAILABLE', retryable: true });
    expect((error as Error).message).toContain('pipeline-promoter/flux-system/hmac');
  });
});
