import { sign } from '@octokit/webhooks-methods';
import { describe, expect, it } from 'vitest';
import { MemoryMetricsSink } from '../../functions/adapters/memory-metrics-sink.ts';
import {
  decodeGitHubWebhookSecret,
  type GitHubWebhookDependencies,
  handleGitHubWebhookRequest,
} from '../../functions/core/github-webhook.ts';
import { silentLogger } from '../../functions/core/logger.ts';
import type { Pipeline } from '../../functions/core/pipeline.ts';
import { parsePipelineManifests } from '../../functions/core/pipeline-manifest.ts';
import type { PromotionRecord } from '../../functions/core/ports.ts';
import { readFixture } from '../support/fixtures.ts';
import { inMemoryStateStore } from '../support/state-stores.ts';

/** `POST /webhooks/github` alone, on serve's state store: GitHub's pull_request deliveries. */
const SECRET = 'a-github-webhook-secret-of-the-tests';
const PREVIOUS = 'the-previous-github-webhook-secret';
const [podinfo] = parsePipelineManifests(readFixture('pipelines/podinfo.yaml')).pipelines as [
  Pipeline,
];
const ref = { namespace: 'flux-system', name: 'podinfo' };

const opened: PromotionRecord = {
  pipeline: ref,
  environment: 'staging',
  revision: '6.5.0',
  state: 'opened',
  jobId: 'job-1',
  from: 'dev',
  eventTimestamp: '2026-11-20T16:00:00.000Z',
  updatedAt: '2026-11-20T16:01:00.000Z',
  pullRequest: { number: 7, url: 'https://github.com/example-org/fleet/pull/7', state: 'open' },
  timeline: {
    sourceDeployedAt: '2026-11-20T16:00:00.000Z',
    pullRequestAt: '2026-11-20T16:01:00.000Z',
  },
};

const setUp = async () => {
  const state = inMemoryStateStore();
  await state.putPromotion(opened);
  const metrics = new MemoryMetricsSink();
  const deps: GitHubWebhookDependencies = {
    pipelines: { get: async (wanted) => (wanted.name === 'podinfo' ? podinfo : undefined) },
    webhookSecrets: { githubWebhookSecrets: async () => [SECRET, PREVIOUS] },
    deliveries: state,
    state,
    clock: { now: () => new Date('2026-11-20T16:30:00Z') },
    metrics,
    logger: silentLogger,
  };
  return { state, metrics, deps };
};

const pullRequestEvent = (overrides: Record<string, unknown> = {}, merged = true) =>
  JSON.stringify({
    action: 'closed',
    number: 7,
    pull_request: {
      number: 7,
      title: 'Promote flux-system/podinfo in staging to 6.5.0',
      body: 'Promotes ...\n\npipeline-promoter: flux-system/podinfo/staging',
      state: 'closed',
      merged,
      merged_at: merged ? '2026-11-20T16:20:00Z' : null,
      merge_commit_sha: merged ? 'f00dfeed' : null,
      head: { ref: 'promotion-flux-system-podinfo-staging' },
      base: { ref: 'main', repo: { full_name: 'example-org/fleet' } },
      ...overrides,
    },
    repository: { full_name: 'example-org/fleet' },
  });

const deliver = async (
  deps: GitHubWebhookDependencies,
  body: string,
  options: { secret?: string; delivery?: string; event?: string; signature?: string } = {},
) =>
  handleGitHubWebhookRequest(
    {
      method: 'POST',
      path: '/webhooks/github',
      headers: {
        'x-github-event': options.event ?? 'pull_request',
        'x-github-delivery': options.delivery ?? '72d3162e-cc78-11e3-81ab-4c9367dc0958',
        'x-hub-signature-256': options.signature ?? (await sign(options.secret ?? SECRET, body)),
      },
      body: Buffer.from(body),
    },
    deps,
  );

describe('handleGitHubWebhookRequest', () => {
  it('a merged promotion PR moves the promotion to merged with its merge commit and time', async () => {
    // Prepare
    const { deps, state, metrics } = await setUp();

    // Act
    const result = await deliver(deps, pullRequestEvent());

    // Assess
    expect(result).toMatchObject({ status: 200, outcome: 'merged' });
    expect(await state.getPromotion(ref, 'staging')).toMatchObject({
      state: 'merged',
      pullRequest: { number: 7, state: 'merged', mergeCommit: 'f00dfeed' },
      timeline: { mergedAt: '2026-11-20T16:20:00.000Z' },
    });
    expect(metrics.sum('PullRequestMergeTime')).toBe(19 * 60_000);
    expect(metrics.sum('GitHubWebhookRequests', { Outcome: 'merged' })).toBe(1);
  });

  it('closed unmerged: closed, and a later job of the same revision does not reopen it', async () => {
    // Prepare
    const { deps, state } = await setUp();

    // Act
    const result = await deliver(deps, pullRequestEvent({}, false));
    const reclaimed = await state.putPromotion({
      ...opened,
      state: 'pushing',
      eventTimestamp: '2026-11-20T17:00:00.000Z',
    });

    // Assess
    expect(result).toMatchObject({ status: 200, outcome: 'closed' });
    expect(reclaimed).toBe(false);
    expect(await state.getPromotion(ref, 'staging')).toMatchObject({
      state: 'closed',
      pullRequest: { state: 'closed' },
    });
  });

  it('the previous secret verifies while rotating; a forged signature or another secret does not', async () => {
    // Prepare
    const { deps, state } = await setUp();
    const body = pullRequestEvent();

    // Act
    const forged = await deliver(deps, body, { secret: 'not-the-webhook-secret-at-all' });
    const tampered = await deliver(deps, body.replace('6.5.0', '6.5.9'), {
      signature: await sign(SECRET, body),
    });
    const unsigned = await handleGitHubWebhookRequest(
      { method: 'POST', path: '/webhooks/github', headers: {}, body: Buffer.from(body) },
      deps,
    );
    const garbage = await deliver(deps, body, { signature: 'sha256=zz' });
    const afterRefusals = await state.getPromotion(ref, 'staging');
    const previous = await deliver(deps, body, { secret: PREVIOUS });

    // Assess
    expect([forged, tampered, unsigned, garbage].map((answer) => answer.status)).toEqual([
      401, 401, 401, 401,
    ]);
    expect(afterRefusals?.state).toBe('opened');
    expect(previous).toMatchObject({ status: 200, outcome: 'merged' });
  });

  it('a replayed delivery id has no second effect', async () => {
    // Prepare
    const { deps, metrics } = await setUp();
    const body = pullRequestEvent();

    // Act
    const first = await deliver(deps, body, { delivery: 'delivery-1' });
    const replayed = await deliver(deps, body, { delivery: 'delivery-1' });

    // Assess
    expect([first.outcome, replayed.outcome]).toEqual(['merged', 'duplicate']);
    expect(
      metrics.snapshot()[
        'PullRequestMergeTime{Application=podinfo,Environment=staging,Pipeline=flux-system/podinfo}'
      ]?.count,
    ).toBe(1);
  });

  it('ignores what is not a promotion PR of this pipeline: other branch, other repository, no correlation, older revision', async () => {
    // Prepare
    const { deps, state } = await setUp();

    // Act
    const answers = [
      await deliver(deps, pullRequestEvent({ head: { ref: 'feature/x' } }), { delivery: 'a' }),
      await deliver(
        deps,
        pullRequestEvent({ base: { ref: 'main', repo: { full_name: 'mallory/fleet' } } }),
        { delivery: 'b' },
      ),
      await deliver(deps, pullRequestEvent({ body: 'no correlation line' }), { delivery: 'c' }),
      await deliver(
        deps,
        pullRequestEvent({ title: 'Promote flux-system/podinfo in staging to 6.4.0' }),
        { delivery: 'd' },
      ),
      await deliver(deps, pullRequestEvent({ number: 99 }), { delivery: 'e' }),
    ];

    // Assess
    expect(answers.map((answer) => [answer.status, answer.outcome])).toEqual([
      [202, 'ignored'],
      [202, 'ignored'],
      [202, 'ignored'],
      [200, 'ignored'],
      [200, 'ignored'],
    ]);
    expect((await state.getPromotion(ref, 'staging'))?.state).toBe('opened');
  });

  it('answers ping, ignores other events and actions, and refuses what is not a delivery', async () => {
    // Prepare
    const { deps } = await setUp();

    // Act
    const ping = await deliver(deps, '{"zen":"Keep it logically awesome."}', { event: 'ping' });
    const push = await deliver(deps, '{"ref":"refs/heads/main"}', { event: 'push' });
    const reopened = await deliver(deps, pullRequestEvent().replace('"closed"', '"reopened"'));
    const notJson = await deliver(deps, 'not json');
    const get = await handleGitHubWebhookRequest(
      { method: 'GET', path: '/webhooks/github', headers: {}, body: new Uint8Array() },
      deps,
    );

    // Assess
    expect([ping.status, push.status, reopened.status, notJson.status, get.status]).toEqual([
      200, 202, 202, 400, 405,
    ]);
  });
});

describe('decodeGitHubWebhookSecret', () => {
  it('answers the current secret first, then the previous; names the key when invalid', () => {
    expect(decodeGitHubWebhookSecret({ secret: SECRET, 'secret-previous': PREVIOUS }, 's')).toEqual(
      [SECRET, PREVIOUS],
    );
    expect(() =>
      decodeGitHubWebhookSecret({ secret: 'short' }, 'pipeline-promoter/github-webhook'),
    ).toThrow(
      /pipeline-promoter\/github-webhook: secret: expected a webhook secret of 16 characters or more/,
    );
  });
});
