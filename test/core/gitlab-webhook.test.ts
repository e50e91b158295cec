import { describe, expect, it } from 'vitest';
import { MemoryMetricsSink } from '../../functions/adapters/memory-metrics-sink.ts';
import { PromoterError } from '../../functions/core/errors.ts';
import {
  type GitLabWebhookDependencies,
  type GitLabWebhookRequest,
  handleGitLabWebhookRequest,
  MAX_GITLAB_BODY_BYTES,
  matchesWebhookToken,
} from '../../functions/core/gitlab-webhook.ts';
import { silentLogger } from '../../functions/core/logger.ts';
import { decodeWebhookSecret } from '../../functions/core/pull-request-webhook.ts';
import {
  gitlabPodinfoPipeline,
  mergeRequestHook,
  openedMergeRequestPromotion,
} from '../support/gitlab-hooks.ts';
import {
  mergeRequestHookHeaders,
  mergeRequestHookPayload,
} from '../support/gitlab-stand-in/webhooks.ts';
import { inMemoryStateStore } from '../support/state-stores.ts';

/**
 * `POST /webhooks/gitlab` alone, on serve's state store and the real lifecycle: GitLab's
 * "Merge Request Hook" deliveries (the documented payload) of the podinfo pipeline, whose
 * promotions into staging are merge requests on gitlab.example.com/platform/gitops/fleet (prod's
 * stay GitHub pull requests).
 */
const TOKEN = 'a-gitlab-webhook-token-of-the-tests';
const PREVIOUS = 'the-previous-gitlab-webhook-token';
const NOW = '2026-11-20T16:30:00.000Z';
const podinfo = gitlabPodinfoPipeline();
const opened = openedMergeRequestPromotion;
const ref = opened.pipeline;

const setUp = async (secrets: () => Promise<readonly string[]> = async () => [TOKEN, PREVIOUS]) => {
  const state = inMemoryStateStore();
  await state.putPromotion(opened);
  const metrics = new MemoryMetricsSink();
  const deps: GitLabWebhookDependencies = {
    pipelines: { get: async (wanted) => (wanted.name === 'podinfo' ? podinfo : undefined) },
    webhookSecrets: { gitlabWebhookSecrets: secrets },
    deliveries: state,
    state,
    clock: { now: () => new Date(NOW) },
    metrics,
    logger: silentLogger,
  };
  return { state, metrics, deps };
};

const CLOSED = { action: 'close', state: 'closed', merge_commit_sha: null, merged_at: null };

const request = (
  body: string,
  headers: Record<string, string | undefined> = {},
  method = 'POST',
): GitLabWebhookRequest => ({
  method,
  path: '/webhooks/gitlab',
  headers: {
    'x-gitlab-token': TOKEN,
    'x-gitlab-event': 'Merge Request Hook',
    'x-gitlab-event-uuid': '13792a34-cac6-4fda-95a8-c58e00a3954e',
    'idempotency-key': 'f5e5f430-f57b-4e6e-9fac-d9128cd7232f',
    ...headers,
  },
  body: Buffer.from(body),
});

/** One delivery with its own delivery id, so that it is never taken for a repeat. */
let deliveries = 0;
const deliver = (
  deps: GitLabWebhookDependencies,
  body: string,
  headers: Record<string, string | undefined> = {},
) => {
  deliveries += 1;
  return handleGitLabWebhookRequest(
    request(body, { 'idempotency-key': `delivery-${deliveries}`, ...headers }),
    deps,
  );
};

describe('handleGitLabWebhookRequest: merged and closed promotion merge requests', () => {
  it('a merged promotion MR moves the promotion to merged with its merge commit and time', async () => {
    // Prepare
    const { deps, state, metrics } = await setUp();

    // Act
    const result = await deliver(deps, mergeRequestHook());

    // Assess
    expect(result).toMatchObject({
      status: 200,
      outcome: 'merged',
      body: { pipeline: 'flux-system/podinfo', environment: 'staging', state: 'merged' },
    });
    expect(await state.getPromotion(ref, 'staging')).toMatchObject({
      state: 'merged',
      pullRequest: { number: 7, state: 'merged', mergeCommit: 'f00dfeed' },
      timeline: { mergedAt: '2026-11-20T16:20:00.000Z' },
    });
    expect(metrics.sum('PullRequestMergeTime')).toBe(19 * 60_000);
    expect(metrics.sum('GitLabWebhookRequests', { Outcome: 'merged' })).toBe(1);
    expect(metrics.sum('GitHubWebhookRequests')).toBe(0);
  });

  it('a merge hook without merged_at and merge_commit_sha takes the lifecycle clock and no commit', async () => {
    // Prepare
    const { deps, state } = await setUp();
    const older = mergeRequestHook({ merged_at: undefined, merge_commit_sha: null });

    // Act
    const result = await deliver(deps, older);

    // Assess
    expect(result).toMatchObject({ status: 200, outcome: 'merged' });
    const record = await state.getPromotion(ref, 'staging');
    expect(record?.timeline?.mergedAt).toBe(NOW);
    expect(record?.pullRequest).not.toHaveProperty('mergeCommit');
  });

  it('GitLab timestamps in its older "UTC" spelling are read too', async () => {
    // Prepare
    const { deps, state } = await setUp();

    // Act
    await deliver(deps, mergeRequestHook({ merged_at: '2026-11-20 16:25:00 UTC' }));

    // Assess
    expect((await state.getPromotion(ref, 'staging'))?.timeline?.mergedAt).toBe(
      '2026-11-20T16:25:00.000Z',
    );
  });

  it('closed unmerged: closed, and a later job of the same revision does not reopen it', async () => {
    // Prepare
    const { deps, state, metrics } = await setUp();

    // Act
    const result = await deliver(deps, mergeRequestHook(CLOSED));
    const reclaimed = await state.putPromotion({
      ...opened,
      state: 'pushing',
      eventTimestamp: '2026-11-20T17:00:00.000Z',
    });

    // Assess
    expect(result).toMatchObject({ status: 200, outcome: 'closed', body: { state: 'closed' } });
    expect(reclaimed).toBe(false);
    expect(await state.getPromotion(ref, 'staging')).toMatchObject({
      state: 'closed',
      pullRequest: { state: 'closed' },
    });
    expect(metrics.sum('PullRequestMergeTime')).toBe(0);
  });
});

describe("handleGitLabWebhookRequest: the GitLab stand-in's deliveries", () => {
  it('takes the Merge Request Hook the stand-in sends (no merged_at, "UTC" times) as GitLab would', async () => {
    // Prepare
    const { deps, state } = await setUp();
    const instanceUrl = 'https://gitlab.example.com';
    const hook = (action: 'merge' | 'update', eventUuid: string) =>
      handleGitLabWebhookRequest(
        {
          method: 'POST',
          path: '/webhooks/gitlab',
          headers: mergeRequestHookHeaders({ token: TOKEN, instanceUrl, eventUuid }),
          body: Buffer.from(
            JSON.stringify(
              mergeRequestHookPayload({
                action,
                instanceUrl,
                project: {
                  id: 14,
                  pathWithNamespace: 'platform/gitops/fleet',
                  defaultBranch: 'main',
                },
                mergeRequest: {
                  id: 99,
                  iid: 7,
                  state: action === 'merge' ? 'merged' : 'opened',
                  sourceBranch: 'promotion-flux-system-podinfo-staging',
                  targetBranch: 'main',
                  title: 'Promote flux-system/podinfo in staging to 6.5.0',
                  description: 'Promotes ...\n\npipeline-promoter: flux-system/podinfo/staging',
                  mergeCommitSha: action === 'merge' ? 'c0ffee00' : null,
                  lastCommitId: 'beefcafe',
                  createdAt: '2026-11-20T16:01:00.000Z',
                  updatedAt: '2026-11-20T16:20:00.000Z',
                },
              }),
            ),
          ),
        },
        deps,
      );

    // Act
    const updated = await hook('update', 'stand-in-1');
    const merged = await hook('merge', 'stand-in-2');

    // Assess
    expect([updated.status, merged.status, merged.outcome]).toEqual([202, 200, 'merged']);
    expect(await state.getPromotion(ref, 'staging')).toMatchObject({
      state: 'merged',
      pullRequest: { number: 7, state: 'merged', mergeCommit: 'c0ffee00' },
      timeline: { mergedAt: NOW },
    });
  });
});

describe('handleGitLabWebhookRequest: the secret token', () => {
  it('the previous token verifies while rotating', async () => {
    // Prepare
    const { deps } = await setUp();

    // Act
    const result = await deliver(deps, mergeRequestHook(), { 'x-gitlab-token': PREVIOUS });

    // Assess
    expect(result).toMatchObject({ status: 200, outcome: 'merged' });
  });

  it('refuses a wrong, missing, empty or length-only-different token with 401 and no effect', async () => {
    // Prepare
    const { deps, state, metrics } = await setUp();
    const body = mergeRequestHook();

    // Act
    const answers = [
      await deliver(deps, body, { 'x-gitlab-token': 'not-the-gitlab-webhook-token-at-all' }),
      await deliver(deps, body, { 'x-gitlab-token': undefined }),
      await deliver(deps, body, { 'x-gitlab-token': '' }),
      await deliver(deps, body, { 'x-gitlab-token': `${TOKEN}x` }),
      await deliver(deps, body, { 'x-gitlab-token': TOKEN.slice(0, -1) }),
      await deliver(deps, body, { 'x-gitlab-token': `${TOKEN}, ${TOKEN}` }),
    ];

    // Assess
    expect(answers.map((answer) => [answer.status, answer.outcome])).toEqual(
      new Array(6).fill([401, 'rejected-signature']),
    );
    expect(answers[1]?.body).toEqual({ error: 'missing X-Gitlab-Token' });
    expect(JSON.stringify(answers)).not.toContain(TOKEN);
    expect((await state.getPromotion(ref, 'staging'))?.state).toBe('opened');
    expect(metrics.sum('GitLabWebhookRequests', { Outcome: 'rejected-signature' })).toBe(6);
  });

  it('checks the token before the body: a wrong token with a broken body is 401, not 400', async () => {
    // Prepare
    const { deps } = await setUp();

    // Act
    const result = await deliver(deps, '{not json', {
      'x-gitlab-token': 'a-wrong-token-of-16-chars',
    });

    // Assess
    expect(result.status).toBe(401);
  });

  it('503 when the secret store is unavailable (GitLab retries), 401 when the secret is missing', async () => {
    // Prepare
    const unavailable = await setUp(async () => {
      throw new PromoterError('SECRET_UNAVAILABLE', 'Secrets Manager throttled', {
        retryable: true,
      });
    });
    const missing = await setUp(async () => {
      throw new PromoterError('SECRET_NOT_FOUND', 'secret pipeline-promoter/gitlab-webhook');
    });

    // Act
    const retried = await deliver(unavailable.deps, mergeRequestHook());
    const refused = await deliver(missing.deps, mergeRequestHook());

    // Assess
    expect(retried).toMatchObject({ status: 503, outcome: 'unavailable' });
    expect(refused).toMatchObject({ status: 401, outcome: 'rejected-signature' });
    expect((await unavailable.state.getPromotion(ref, 'staging'))?.state).toBe('opened');
    expect(unavailable.metrics.sum('GitLabWebhookRequests', { Outcome: 'unavailable' })).toBe(1);
  });

  it('matchesWebhookToken: equal tokens only, whatever their lengths', () => {
    // Assess
    expect(matchesWebhookToken(TOKEN, [PREVIOUS, TOKEN])).toBe(true);
    expect(matchesWebhookToken(TOKEN, [PREVIOUS])).toBe(false);
    expect(matchesWebhookToken(TOKEN, [])).toBe(false);
    expect(matchesWebhookToken(`${TOKEN} `, [TOKEN])).toBe(false);
    expect(matchesWebhookToken('', [TOKEN])).toBe(false);
  });
});

describe('handleGitLabWebhookRequest: what is not a promotion merge request', () => {
  it('ignores other MRs: no correlation line, other branch, other project, other provider, other MR, older revision', async () => {
    // Prepare
    const { deps, state } = await setUp();

    // Act
    const answers = [
      await deliver(deps, mergeRequestHook({ description: 'no correlation line' })),
      await deliver(deps, mergeRequestHook({ description: null })),
      await deliver(deps, mergeRequestHook({ source_branch: 'feature/x' })),
      await deliver(deps, mergeRequestHook({}, { path_with_namespace: 'mallory/fleet' })),
      await deliver(deps, mergeRequestHook({}, { path_with_namespace: 'platform/fleet' })),
      // prod's promotions are GitHub pull requests: a GitLab MR cannot move them.
      await deliver(
        deps,
        mergeRequestHook(
          {
            source_branch: 'promotion-flux-system-podinfo-prod',
            description: 'pipeline-promoter: flux-system/podinfo/prod',
          },
          { path_with_namespace: 'example-org/fleet-prod' },
        ),
      ),
      await deliver(
        deps,
        mergeRequestHook({ description: 'pipeline-promoter: flux-system/unknown/staging' }),
      ),
      await deliver(deps, mergeRequestHook({ iid: 99 })),
      await deliver(
        deps,
        mergeRequestHook({ title: 'Promote flux-system/podinfo in staging to 6.4.0' }),
      ),
    ];

    // Assess
    expect(answers.map((answer) => [answer.status, answer.outcome])).toEqual([
      [202, 'ignored'],
      [202, 'ignored'],
      [202, 'ignored'],
      [202, 'ignored'],
      [202, 'ignored'],
      [202, 'ignored'],
      [202, 'ignored'],
      [200, 'ignored'],
      [200, 'ignored'],
    ]);
    expect((await state.getPromotion(ref, 'staging'))?.state).toBe('opened');
  });

  it('matches the project path case-insensitively, as GitLab does', async () => {
    // Prepare
    const { deps } = await setUp();

    // Act
    const result = await deliver(
      deps,
      mergeRequestHook({}, { path_with_namespace: 'Platform/GitOps/Fleet' }),
    );

    // Assess
    expect(result).toMatchObject({ status: 200, outcome: 'merged' });
  });

  it('ignores other actions and other events with 202, and nothing moves', async () => {
    // Prepare
    const { deps, state } = await setUp();

    // Act
    const answers = [
      ...(await Promise.all(
        ['open', 'update', 'reopen', 'approved', 'approval', 'unapproved'].map((action) =>
          deliver(deps, mergeRequestHook({ action, state: 'opened' })),
        ),
      )),
      await deliver(deps, mergeRequestHook({ action: undefined })),
      await deliver(deps, mergeRequestHook(), { 'x-gitlab-event': 'System Hook' }),
      await deliver(deps, '{"object_kind":"push"}', { 'x-gitlab-event': 'Push Hook' }),
      await deliver(deps, mergeRequestHook(), { 'x-gitlab-event': undefined }),
    ];

    // Assess
    expect(answers.map((answer) => [answer.status, answer.outcome])).toEqual(
      new Array(10).fill([202, 'ignored']),
    );
    expect(answers[0]?.body).toEqual({ ignored: 'action open' });
    expect(answers[7]?.body).toEqual({ ignored: 'event System Hook' });
    expect((await state.getPromotion(ref, 'staging'))?.state).toBe('opened');
  });
});

describe('handleGitLabWebhookRequest: deliveries', () => {
  it('a repeated Idempotency-Key (a GitLab retry) is a 200 duplicate without a second effect', async () => {
    // Prepare
    const { deps, metrics } = await setUp();
    const body = mergeRequestHook();
    const key = { 'idempotency-key': 'f5e5f430-f57b-4e6e-9fac-d9128cd7232f' };

    // Act
    const first = await handleGitLabWebhookRequest(request(body, key), deps);
    // A retry keeps the Idempotency-Key; its X-Gitlab-Event-UUID may differ.
    const retried = await handleGitLabWebhookRequest(
      request(body, { ...key, 'x-gitlab-event-uuid': 'another-event-uuid' }),
      deps,
    );

    // Assess
    expect([first.outcome, retried.outcome]).toEqual(['merged', 'duplicate']);
    expect(retried).toMatchObject({ status: 200, body: { duplicate: true } });
    expect(
      metrics.snapshot()[
        'PullRequestMergeTime{Application=podinfo,Environment=staging,Pipeline=flux-system/podinfo}'
      ]?.count,
    ).toBe(1);
  });

  it('GitLab before 17.4 (no Idempotency-Key): X-Gitlab-Event-UUID is the delivery id', async () => {
    // Prepare
    const { deps } = await setUp();
    const headers = { 'idempotency-key': undefined, 'x-gitlab-event-uuid': 'event-uuid-1' };

    // Act
    const first = await handleGitLabWebhookRequest(request(mergeRequestHook(), headers), deps);
    const repeated = await handleGitLabWebhookRequest(request(mergeRequestHook(), headers), deps);
    const missing = await handleGitLabWebhookRequest(
      request(mergeRequestHook(), { 'idempotency-key': undefined, 'x-gitlab-event-uuid': '' }),
      deps,
    );

    // Assess
    expect([first.outcome, repeated.outcome]).toEqual(['merged', 'duplicate']);
    expect(missing).toMatchObject({ status: 400, outcome: 'rejected-invalid' });
    expect(missing.body.error).toMatch(/X-Gitlab-Event-UUID/);
  });

  it("a GitLab delivery id is not taken for a GitHub delivery's", async () => {
    // Prepare
    const { deps, state } = await setUp();
    await state.firstSeen('shared-id', 60);

    // Act
    const result = await deliver(deps, mergeRequestHook(), { 'idempotency-key': 'shared-id' });

    // Assess
    expect(result.outcome).toBe('merged');
  });
});

describe('handleGitLabWebhookRequest: what is not a delivery', () => {
  it('405 for another method, 413 over the body bound', async () => {
    // Prepare
    const { deps } = await setUp();

    // Act
    const get = await handleGitLabWebhookRequest(request('', {}, 'GET'), deps);
    const oversize = await deliver(
      deps,
      mergeRequestHook({ description: 'x'.repeat(MAX_GITLAB_BODY_BYTES) }),
    );
    const truncated = await handleGitLabWebhookRequest(
      { ...request(''), bodyTruncated: true },
      deps,
    );

    // Assess
    expect(get).toMatchObject({ status: 405, headers: { allow: 'POST' } });
    expect([oversize.status, truncated.status]).toEqual([413, 413]);
  });

  it('400 for a body that is not JSON or not a merge request event, naming the field', async () => {
    // Prepare
    const { deps } = await setUp();
    const { iid: _iid, ...withoutIid } = JSON.parse(mergeRequestHook()).object_attributes;

    // Act
    const notJson = await deliver(deps, 'not json');
    const push = await deliver(deps, '{"object_kind":"push","ref":"refs/heads/main"}');
    const noIid = await deliver(
      deps,
      JSON.stringify({ ...JSON.parse(mergeRequestHook()), object_attributes: withoutIid }),
    );

    // Assess
    expect([notJson.status, push.status, noIid.status]).toEqual([400, 400, 400]);
    expect(notJson.body).toEqual({ error: 'body is not JSON' });
    expect(push.body.error).toMatch(
      /^not a merge request event: object_kind: expected "merge_request"/,
    );
    expect(noIid.body.error).toMatch(/object_attributes\.iid/);
  });
});

describe('decodeWebhookSecret for gitlab-webhook', () => {
  it('answers the current token first, then the previous; names the secret when invalid', () => {
    // Assess
    expect(decodeWebhookSecret({ secret: TOKEN, 'secret-previous': PREVIOUS }, 's')).toEqual([
      TOKEN,
      PREVIOUS,
    ]);
    expect(() =>
      decodeWebhookSecret({ secret: 'short' }, 'pipeline-promoter/gitlab-webhook'),
    ).toThrow(
      /pipeline-promoter\/gitlab-webhook: secret: expected a webhook secret of 16 characters or more/,
    );
  });
});
