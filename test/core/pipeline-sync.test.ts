import { describe, expect, it } from 'vitest';
import { canonicalJson } from '../../functions/adapters/dynamodb-pipeline-store.ts';
import { PromoterError } from '../../functions/core/errors.ts';
import { silentLogger } from '../../functions/core/logger.ts';
import { type Pipeline, type PipelineRef, pipelineId } from '../../functions/core/pipeline.ts';
import { syncPipelineManifests } from '../../functions/core/pipeline-sync.ts';
import { handlePipelinesApiRequest } from '../../functions/core/pipelines-api.ts';
import type { PipelinePutResult, PipelineRegistry } from '../../functions/core/ports.ts';
import { readFixture } from '../support/fixtures.ts';
import { inMemoryStateStore } from '../support/state-stores.ts';
import { memorySecrets } from '../support/webhook-harness.ts';

/** A registry twin with the DynamoDB adapter's semantics: unchanged content is not rewritten. */
class MemoryRegistry implements PipelineRegistry {
  readonly stored = new Map<string, Pipeline>();
  writes = 0;
  deletes = 0;
  inFlight = 0;
  maxInFlight = 0;
  failPut: string | undefined;

  async get(ref: PipelineRef): Promise<Pipeline | undefined> {
    return this.stored.get(pipelineId(ref));
  }
  async list(): Promise<Pipeline[]> {
    return [...this.stored.values()];
  }
  async put(pipeline: Pipeline): Promise<PipelinePutResult> {
    this.inFlight += 1;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    await new Promise((resolve) => setTimeout(resolve, 1));
    this.inFlight -= 1;
    const id = pipelineId(pipeline);
    if (id === this.failPut) {
      throw new PromoterError('STORE_UNAVAILABLE', 'table unavailable', { retryable: true });
    }
    const current = this.stored.get(id);
    if (current !== undefined && canonicalJson(current) === canonicalJson(pipeline))
      return 'unchanged';
    this.stored.set(id, pipeline);
    this.writes += 1;
    return current === undefined ? 'created' : 'updated';
  }
  async delete(ref: PipelineRef): Promise<boolean> {
    this.deletes += 1;
    return this.stored.delete(pipelineId(ref));
  }
}

const FIXTURE_FILES = [
  'invalid-no-hmac.yaml',
  'list-from-kubectl.yaml',
  'podinfo.yaml',
  'search-rfc-draft.yaml',
];
const fixtures = (...files: string[]): string =>
  files.map((file) => readFixture(`pipelines/${file}`)).join('\n---\n');
const ALL = fixtures(...FIXTURE_FILES);
const VALID_IDS = ['flux-system/apps', 'flux-system/podinfo', 'shopping/search'];

describe('syncPipelineManifests', () => {
  it('stores the valid pipelines and reports the invalid one with its errors', async () => {
    // Prepare
    const registry = new MemoryRegistry();

    // Act
    const result = await syncPipelineManifests(registry, ALL);

    // Assess
    expect(result.counts).toEqual({ created: 3, updated: 0, unchanged: 0, deleted: 0, invalid: 1 });
    expect(result.created).toEqual(VALID_IDS);
    expect(result.invalid).toEqual([
      {
        id: 'flux-system/nohmac',
        errors: [expect.stringContaining('spec.promotion.strategy.secretRef')],
      },
    ]);
    expect([...registry.stored.keys()].sort()).toEqual(VALID_IDS);
    expect(result.prune).toEqual({ requested: false, performed: false, kept: [] });
  });

  it('a second identical sync reports everything unchanged and writes nothing', async () => {
    // Prepare
    const registry = new MemoryRegistry();
    await syncPipelineManifests(registry, ALL);
    const writes = registry.writes;

    // Act
    const result = await syncPipelineManifests(registry, ALL);

    // Assess
    expect(result.counts).toEqual({ created: 0, updated: 0, unchanged: 3, deleted: 0, invalid: 1 });
    expect(result.unchanged).toEqual(VALID_IDS);
    expect(registry.writes).toBe(writes);
  });

  it('a changed definition is updated; JSON input (kubectl -o json) works the same', async () => {
    // Prepare
    const registry = new MemoryRegistry();
    await syncPipelineManifests(registry, fixtures('podinfo.yaml'));
    const [podinfo] = await registry.list();
    const changed = {
      apiVersion: 'v1',
      kind: 'List',
      items: [
        {
          apiVersion: 'pipelines.weave.works/v1alpha1',
          kind: 'Pipeline',
          metadata: { name: 'podinfo', namespace: 'flux-system' },
          spec: {
            appRef: {
              apiVersion: 'helm.toolkit.fluxcd.io/v2',
              kind: 'HelmRelease',
              name: 'podinfo',
              secretRef: 'hmac',
            },
            environments: [
              { name: 'dev', targets: [{ namespace: 'dev' }] },
              { name: 'prod', targets: [{ namespace: 'prod' }] },
            ],
            promotion: [
              {
                type: 'pull-request',
                url: 'https://github.com/o/r',
                branch: 'main',
                secretRef: 'token',
              },
            ],
          },
        },
      ],
    };

    // Act
    const result = await syncPipelineManifests(registry, JSON.stringify(changed));

    // Assess
    expect(result.counts).toMatchObject({ created: 0, updated: 1, invalid: 0 });
    expect(result.updated).toEqual(['flux-system/podinfo']);
    expect(await registry.get({ namespace: 'flux-system', name: 'podinfo' })).not.toEqual(podinfo);
  });

  it('prune deletes stored pipelines absent from the input, after putting the others', async () => {
    // Prepare
    const registry = new MemoryRegistry();
    await syncPipelineManifests(registry, ALL);

    // Act
    const result = await syncPipelineManifests(
      registry,
      fixtures('podinfo.yaml', 'invalid-no-hmac.yaml'),
      { prune: true },
    );

    // Assess
    expect(result.counts).toEqual({ created: 0, updated: 0, unchanged: 1, deleted: 2, invalid: 1 });
    expect(result.deleted).toEqual(['flux-system/apps', 'shopping/search']);
    expect(result.prune).toEqual({ requested: true, performed: true, kept: [] });
    expect([...registry.stored.keys()]).toEqual(['flux-system/podinfo']);
  });

  it('without prune, absent pipelines stay', async () => {
    // Prepare
    const registry = new MemoryRegistry();
    await syncPipelineManifests(registry, ALL);

    // Act
    const result = await syncPipelineManifests(registry, fixtures('podinfo.yaml'));

    // Assess
    expect(result.counts.deleted).toBe(0);
    expect(registry.stored.size).toBe(3);
  });

  it('prune keeps the stored definition of a pipeline that is invalid in the input', async () => {
    // Prepare
    const registry = new MemoryRegistry();
    await syncPipelineManifests(registry, ALL);
    const broken = fixtures('podinfo.yaml', 'list-from-kubectl.yaml').replace(
      'kind: HelmRelease',
      'kind: 42',
    );

    // Act
    const result = await syncPipelineManifests(registry, broken, { prune: true });

    // Assess
    expect(result.invalid.map((entry) => entry.id)).toEqual(['flux-system/podinfo']);
    expect(result.prune).toEqual({
      requested: true,
      performed: true,
      kept: ['flux-system/podinfo'],
    });
    expect(result.deleted).toEqual(['shopping/search']);
    expect([...registry.stored.keys()].sort()).toEqual(['flux-system/apps', 'flux-system/podinfo']);
  });

  it('prune is skipped when an invalid item names no pipeline (it could be any of them)', async () => {
    // Prepare
    const registry = new MemoryRegistry();
    await syncPipelineManifests(registry, ALL);
    const text = `${fixtures('podinfo.yaml')}\n---\nkind: Pipeline\nspec: [unclosed\n`;

    // Act
    const result = await syncPipelineManifests(registry, text, { prune: true });

    // Assess
    expect(result.invalid).toEqual([{ id: 'input document 2', errors: expect.any(Array) }]);
    expect(result.prune).toEqual({
      requested: true,
      performed: false,
      reason: expect.stringContaining('input document 2'),
      kept: [],
    });
    expect(result.counts).toMatchObject({ unchanged: 1, deleted: 0 });
    expect(registry.stored.size).toBe(3);
    expect(registry.deletes).toBe(0);
  });

  it('an input without documents never prunes; an empty List prunes everything', async () => {
    // Prepare
    const registry = new MemoryRegistry();
    await syncPipelineManifests(registry, ALL);

    // Act
    const empty = await syncPipelineManifests(registry, '# kubectl printed nothing\n', {
      prune: true,
    });
    const emptyList = await syncPipelineManifests(
      registry,
      'apiVersion: v1\nkind: List\nitems: []\n',
      { prune: true },
    );

    // Assess
    expect(empty.prune).toMatchObject({
      performed: false,
      reason: expect.stringContaining('no document'),
    });
    expect(empty.counts.deleted).toBe(0);
    expect(emptyList.deleted).toEqual(VALID_IDS);
    expect(registry.stored.size).toBe(0);
  });

  it('a store failure rejects the sync before anything is deleted', async () => {
    // Prepare
    const registry = new MemoryRegistry();
    await syncPipelineManifests(registry, ALL);
    registry.failPut = 'flux-system/podinfo';

    // Act
    const sync = syncPipelineManifests(registry, fixtures('podinfo.yaml'), { prune: true });

    // Assess
    await expect(sync).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
    expect(registry.deletes).toBe(0);
  });

  it('writes at most `concurrency` pipelines at once', async () => {
    // Prepare
    const registry = new MemoryRegistry();
    const many = Array.from({ length: 20 }, (_, index) =>
      readFixture('pipelines/podinfo.yaml').replace(
        'name: podinfo\n  namespace',
        `name: podinfo-${index}\n  namespace`,
      ),
    ).join('\n---\n');

    // Act
    const result = await syncPipelineManifests(registry, many, { concurrency: 3 });

    // Assess
    expect(result.counts.created).toBe(20);
    expect(registry.maxInFlight).toBe(3);
  });
});

describe('syncPipelineManifests: shared-key warnings', () => {
  const KEY = (name: string) => `${name}-key-0123456789`;
  const perEnvironment = (...environments: string[]) => ({
    'hmac-key': KEY('approval'),
    ...Object.fromEntries(
      environments.map((environment) => [`hmac-key-${environment}`, KEY(environment)]),
    ),
    token: 'gh-token',
  });

  it('has no warnings without a secret store', async () => {
    // Act
    const result = await syncPipelineManifests(new MemoryRegistry(), ALL);

    // Assess
    expect(result.warnings).toEqual([]);
  });

  it('warns for a pipeline whose environments share a key and one whose secret cannot be read; stores them all', async () => {
    // Prepare
    const registry = new MemoryRegistry();
    const secrets = memorySecrets({
      'flux-system/promotion-credentials': perEnvironment('dev', 'staging', 'prod'),
      'flux-system/fleet-credentials': { 'hmac-key': KEY('shared'), token: 'gh-token' },
    });

    // Act
    const result = await syncPipelineManifests(registry, ALL, { secrets });

    // Assess
    expect(result.counts.created).toBe(3);
    expect(result.warnings).toEqual([
      {
        id: 'flux-system/apps',
        message: expect.stringMatching(
          /^pipeline flux-system\/apps: events from dev and prod are verified with the shared hmac-key of secret flux-system\/fleet-credentials, so each of their clusters can sign the others' events and approvals: give each environment its own key \(hmac-key-dev, hmac-key-prod; promoter keys flux-system\/apps --envs dev,prod prints a set\)$/,
        ),
      },
      {
        id: 'shopping/search',
        message: expect.stringContaining(
          'could not check the webhook keys of secret shopping/my-hmac-shared-secret (events from dev and prod): SECRET_NOT_FOUND',
        ),
      },
    ]);
    expect(JSON.stringify(result.warnings)).not.toContain(KEY('shared'));
  });

  it("warns when only the last environment is left on the pipeline's shared key: its cluster could sign approvals", async () => {
    // Prepare
    const secrets = memorySecrets({
      'flux-system/promotion-credentials': perEnvironment('dev', 'staging'),
    });

    // Act
    const result = await syncPipelineManifests(new MemoryRegistry(), fixtures('podinfo.yaml'), {
      secrets,
    });

    // Assess
    expect(result.warnings).toEqual([
      {
        id: 'flux-system/podinfo',
        message: expect.stringContaining(
          'events from prod are verified with the shared hmac-key of secret flux-system/promotion-credentials, so its cluster can sign approvals',
        ),
      },
    ]);
  });

  it('PUT /pipelines carries the warnings when the API has the secret store', async () => {
    // Prepare
    const registry = new MemoryRegistry();
    const request = {
      method: 'PUT',
      path: '/pipelines',
      query: '',
      headers: {},
      body: Buffer.from(fixtures('list-from-kubectl.yaml')),
    };
    const deps = {
      pipelines: registry,
      registry,
      state: inMemoryStateStore(),
      logger: silentLogger,
    };
    const secrets = memorySecrets({
      'flux-system/fleet-credentials': { 'hmac-key': KEY('shared'), token: 'gh-token' },
    });

    // Act
    const without = await handlePipelinesApiRequest(request, deps);
    const withSecrets = await handlePipelinesApiRequest(request, { ...deps, secrets });

    // Assess
    expect(without).toMatchObject({ status: 200, body: { warnings: [] } });
    expect(withSecrets).toMatchObject({
      status: 200,
      body: {
        warnings: [{ id: 'flux-system/apps', message: expect.stringContaining('hmac-key-dev') }],
      },
    });
  });
});
