import { copyFile, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FilePipelineStore } from '../../functions/adapters/file-pipeline-store.ts';
import { FileSecretStore } from '../../functions/adapters/file-secret-store.ts';
import { silentLogger } from '../../functions/core/logger.ts';
import { FIXTURES, readFixture } from '../support/fixtures.ts';
import { describePipelineStoreContract } from './pipeline-store.contract.ts';
import { describeSecretStoreContract } from './secret-store.contract.ts';

/** The file twins `promoter serve` reads its pipelines and secrets from. */
const folder = () => mkdtemp(join(tmpdir(), 'file-stores-'));

describePipelineStoreContract('FilePipelineStore', async (manifests) => {
  const file = join(await folder(), 'pipelines.yaml');
  await writeFile(file, manifests);
  const store = await FilePipelineStore.load(file, silentLogger);
  return {
    store,
    replace: async (next) => {
      await writeFile(file, next);
      await store.reload();
    },
  };
});

describe('FilePipelineStore', () => {
  it('serves the valid pipelines of a directory and lists the invalid ones with their errors', async () => {
    // Prepare
    const directory = await folder();
    for (const file of [
      'podinfo.yaml',
      'search-rfc-draft.yaml',
      'list-from-kubectl.yaml',
      'invalid-no-hmac.yaml',
    ]) {
      await copyFile(join(FIXTURES, 'pipelines', file), join(directory, file));
    }
    await writeFile(join(directory, 'notes.txt'), 'not a manifest');

    // Act
    const store = await FilePipelineStore.load(directory, silentLogger);

    // Assess
    expect(
      store
        .list()
        .map((pipeline) => `${pipeline.namespace}/${pipeline.name}`)
        .sort(),
    ).toEqual(['flux-system/apps', 'flux-system/podinfo', 'shopping/search']);
    expect(await store.get({ namespace: 'flux-system', name: 'podinfo' })).toMatchObject({
      app: { name: 'podinfo' },
    });
    expect(await store.get({ namespace: 'flux-system', name: 'nohmac' })).toBeUndefined();
    expect(store.invalid()).toEqual([
      {
        id: 'flux-system/nohmac',
        errors: [expect.stringContaining('spec.promotion.strategy.secretRef')],
      },
    ]);
  });

  it('reads the files again when they change', async () => {
    // Prepare
    const directory = await folder();
    const file = join(directory, 'pipelines.yaml');
    await writeFile(file, readFixture('pipelines/podinfo.yaml'));
    const store = await FilePipelineStore.load(directory, silentLogger);
    store.watch();

    try {
      // Act
      await writeFile(file, readFixture('pipelines/search-rfc-draft.yaml'));

      // Assess
      const deadline = Date.now() + 5_000;
      while ((await store.get({ namespace: 'shopping', name: 'search' })) === undefined) {
        if (Date.now() > deadline) throw new Error('the store did not reload');
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(await store.get({ namespace: 'flux-system', name: 'podinfo' })).toBeUndefined();
    } finally {
      store.close();
    }
  });
});

describe('FileSecretStore', () => {
  const load = async (value: unknown) => {
    const file = join(await folder(), 'secrets.json');
    await writeFile(file, typeof value === 'string' ? value : JSON.stringify(value));
    return { file, store: () => FileSecretStore.load(file) };
  };

  describeSecretStoreContract('FileSecretStore', async (secrets) => (await load(secrets)).store());

  it('decodes Weave keys, with the previous HMAC key and git credentials', async () => {
    const { store } = await load({
      'flux-system/creds': {
        'hmac-key': 'new-hmac-key-for-tests',
        'hmac-key-previous': 'old-hmac-key-for-tests',
        token: 't',
        username: 'u',
        password: 'p',
      },
    });
    expect(await (await store()).get({ namespace: 'flux-system', name: 'creds' })).toEqual({
      hmacKeys: ['new-hmac-key-for-tests', 'old-hmac-key-for-tests'],
      token: 't',
      git: { username: 'u', password: 'p' },
    });
  });

  it('says a missing secrets file is missing, and where valid JSON breaks without quoting it', async () => {
    // Prepare
    const missing = join(await folder(), 'secrets.json');
    const { file: broken, store: brokenStore } = await load(
      '{\n  "ns/s": {"hmac-key": "a-secret-value",}\n}',
    );
    const { file: empty, store: emptyStore } = await load('');

    // Act
    const outcomes = await Promise.allSettled([
      FileSecretStore.load(missing),
      brokenStore(),
      emptyStore(),
    ]);

    // Assess
    const messages = outcomes.map((outcome) =>
      outcome.status === 'rejected' ? (outcome.reason as Error).message : 'loaded',
    );
    expect(messages).toEqual([
      `secrets file ${missing} does not exist`,
      `secrets file ${broken} is not valid JSON at line 2, column 41`,
      `secrets file ${empty} is not valid JSON: the file is empty`,
    ]);
    expect(outcomes.map((outcome) => outcome.status === 'rejected' && outcome.reason.code)).toEqual(
      ['INVALID_CONFIG', 'INVALID_CONFIG', 'INVALID_CONFIG'],
    );
  });

  it('a missing secret is SECRET_NOT_FOUND, saying where to add it', async () => {
    const { file, store } = await load({});
    await expect((await store()).get({ namespace: 'ns', name: 's' })).rejects.toMatchObject({
      code: 'SECRET_NOT_FOUND',
      retryable: false,
      message: expect.stringContaining(`not found in ${file}: add "ns/s"`),
    });
  });

  it.each([
    ['not JSON', '{oops', /is not valid JSON/],
    ['not an object', '[1]', /expected an object mapping "namespace\/name"/],
    [
      'a key without a namespace',
      { creds: { token: 't' } },
      /key "creds": expected "namespace\/name"/,
    ],
  ])('refuses a file that is %s at start-up', async (_name, value, message) => {
    const { store } = await load(value);
    await expect(store()).rejects.toMatchObject({
      code: 'INVALID_CONFIG',
      message: expect.stringMatching(message),
    });
  });

  it('refuses a secret with a username and no password, without repeating any value', async () => {
    const { store } = await load({ 'ns/s': { token: 'ghp_secretvalue', username: 'bob' } });
    const error = await store().then(
      () => undefined,
      (caught: unknown) => caught,
    );
    expect(error).toMatchObject({
      code: 'INVALID_SECRET',
      message: 'secret ns/s is invalid: password: expected username and password together',
    });
    expect(String((error as Error).message)).not.toContain('ghp_secretvalue');
  });
});
