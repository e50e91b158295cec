import { describe, expect, it } from 'vitest';
import { PromoterError } from '../../functions/core/errors.ts';
import { silentLogger } from '../../functions/core/logger.ts';
import type { Pipeline } from '../../functions/core/pipeline.ts';
import { parsePipelineManifests } from '../../functions/core/pipeline-manifest.ts';
import {
  handlePipelinesApiRequest,
  type PipelinesApiDependencies,
} from '../../functions/core/pipelines-api.ts';
import { readFixture } from '../support/fixtures.ts';
import { inMemoryStateStore } from '../support/state-stores.ts';

/** `GET /pipelines`: every pipeline's status at once (what the status page shows). */
const pipelines = ['podinfo.yaml', 'search-rfc-draft.yaml'].flatMap(
  (file) => parsePipelineManifests(readFixture(`pipelines/${file}`)).pipelines,
);

const state = inMemoryStateStore();

const dependencies = (listed: readonly Pipeline[]): PipelinesApiDependencies => {
  return {
    pipelines: {
      get: async (ref) =>
        listed.find(
          (pipeline) => pipeline.namespace === ref.namespace && pipeline.name === ref.name,
        ),
    },
    catalog: { list: () => listed },
    state,
    logger: silentLogger,
  };
};

const list = (deps: PipelinesApiDependencies) =>
  handlePipelinesApiRequest(
    { method: 'GET', path: '/pipelines', query: '', body: new Uint8Array(0) },
    deps,
  );

describe('GET /pipelines', () => {
  it("answers every pipeline's status, ordered by namespace/name, with its deployments", async () => {
    // Prepare
    const deps = dependencies([...pipelines].reverse());
    await state.recordDeployment({
      pipeline: { namespace: 'flux-system', name: 'podinfo' },
      environment: 'dev',
      revision: '6.5.0',
      eventTimestamp: '2026-11-20T16:00:00Z',
      recordedAt: '2026-11-20T16:00:01Z',
    });

    // Act
    const answer = await list(deps);

    // Assess
    expect(answer.status).toBe(200);
    const body = answer.body as { pipelines: { pipeline: string; environments: unknown[] }[] };
    const ids = pipelines.map((pipeline) => `${pipeline.namespace}/${pipeline.name}`).sort();
    expect(body.pipelines.map((status) => status.pipeline)).toEqual(ids);
    const podinfo = body.pipelines.find((status) => status.pipeline === 'flux-system/podinfo');
    expect(podinfo?.environments[0]).toMatchObject({
      name: 'dev',
      deployed: { revision: '6.5.0' },
    });
  });

  it('answers an empty list when there are no pipelines, and 404 where nothing lists them', async () => {
    // Prepare
    const empty = dependencies([]);
    const { catalog: _none, ...unlisted } = dependencies(pipelines);

    // Act
    const none = await list(empty);
    const refused = await list(unlisted);

    // Assess
    expect(none).toEqual({ status: 200, body: { pipelines: [] } });
    expect(refused.status).toBe(404);
  });

  it('a store that is unavailable is 503 (retry later)', async () => {
    // Prepare
    const deps: PipelinesApiDependencies = {
      ...dependencies(pipelines),
      catalog: {
        list: async () => {
          throw new PromoterError('STORE_UNAVAILABLE', 'throttled', { retryable: true });
        },
      },
    };

    // Act
    const answer = await list(deps);

    // Assess
    expect(answer).toEqual({
      status: 503,
      body: { error: 'pipeline store temporarily unavailable, retry later' },
    });
  });

  it('other methods than GET and PUT are 405 naming both', async () => {
    // Prepare
    const deps = dependencies(pipelines);

    // Act
    const answer = await handlePipelinesApiRequest(
      { method: 'DELETE', path: '/pipelines', query: '', body: new Uint8Array(0) },
      deps,
    );

    // Assess
    expect(answer.status).toBe(405);
    expect(answer.headers).toEqual({ allow: 'GET, PUT' });
  });
});
