import { mkdtemp, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EmbeddedPromotionStateStore } from '../../functions/adapters/embedded/embedded-promotion-state-store.ts';
import { FileSecretStore } from '../../functions/adapters/file-secret-store.ts';
import { MemoryMetricsSink } from '../../functions/adapters/memory-metrics-sink.ts';
import { silentLogger } from '../../functions/core/logger.ts';
import { systemClock } from '../../functions/core/ports.ts';
import { createServeServer, listen } from '../../functions/serve/server.ts';
import {
  gitlabHookHeaders,
  gitlabPodinfoPipeline,
  mergeRequestHook,
  openedMergeRequestPromotion,
} from '../support/gitlab-hooks.ts';
import { inMemoryStateStore } from '../support/state-stores.ts';
import { webhookHarness } from '../support/webhook-harness.ts';

/**
 * serve's `POST /webhooks/gitlab`: GitLab's merge request deliveries over HTTP, checked against
 * the `"gitlab-webhook"` entry of serve's secrets file, moving the promotion in serve's state
 * store.
 */
const TOKEN = 'the-gitlab-webhook-token-of-serve';
const podinfo = gitlabPodinfoPipeline();
const ref = openedMergeRequestPromotion.pipeline;

let server: Server;
let url: string;
let state: EmbeddedPromotionStateStore;
let metrics: MemoryMetricsSink;

beforeAll(async () => {
  const folder = await mkdtemp(join(tmpdir(), 'serve-gitlab-webhook-'));
  const secretsPath = join(folder, 'secrets.json');
  await writeFile(secretsPath, JSON.stringify({ 'gitlab-webhook': { secret: TOKEN } }));
  state = inMemoryStateStore();
  await state.putPromotion(openedMergeRequestPromotion);
  metrics = new MemoryMetricsSink();
  server = createServeServer({
    webhook: webhookHarness().deps,
    logger: silentLogger,
    gitlab: {
      pipelines: { get: async (wanted) => (wanted.name === 'podinfo' ? podinfo : undefined) },
      webhookSecrets: await FileSecretStore.load(secretsPath),
      deliveries: state,
      state,
      clock: systemClock,
      metrics,
      logger: silentLogger,
    },
  });
  url = await listen(server, 0, '127.0.0.1');
});
afterAll(async () => {
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
});

const post = (body: string, headers: Record<string, string>) =>
  fetch(`${url}/webhooks/gitlab`, { method: 'POST', headers, body });

describe('serve: POST /webhooks/gitlab', () => {
  it('refuses a wrong token, takes a merge once, answers its repeat as a duplicate', async () => {
    // Prepare
    const body = mergeRequestHook();

    // Act
    const forged = await post(body, gitlabHookHeaders('not-the-token-of-serve-at-all', 'd-0'));
    const afterForged = await state.getPromotion(ref, 'staging');
    const merged = await post(body, gitlabHookHeaders(TOKEN, 'd-1'));
    const repeated = await post(body, gitlabHookHeaders(TOKEN, 'd-1'));

    // Assess
    expect(forged.status).toBe(401);
    expect(afterForged?.state).toBe('opened');
    expect(merged.status).toBe(200);
    expect(await merged.json()).toEqual({
      pipeline: 'flux-system/podinfo',
      environment: 'staging',
      state: 'merged',
    });
    expect([repeated.status, await repeated.json()]).toEqual([200, { duplicate: true }]);
    expect(await state.getPromotion(ref, 'staging')).toMatchObject({
      state: 'merged',
      pullRequest: { state: 'merged', mergeCommit: 'f00dfeed' },
    });
    expect(metrics.sum('GitLabWebhookRequests')).toBe(3);
  });

  it('answers another method with 405 and other GitLab events with 202', async () => {
    // Act
    const get = await fetch(`${url}/webhooks/gitlab`);
    const push = await post('{"object_kind":"push"}', gitlabHookHeaders(TOKEN, 'd-2', 'Push Hook'));

    // Assess
    expect([get.status, get.headers.get('allow')]).toEqual([405, 'POST']);
    expect([push.status, await push.json()]).toEqual([202, { ignored: 'event Push Hook' }]);
  });
});
