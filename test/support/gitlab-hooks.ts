import type { Pipeline } from '../../functions/core/pipeline.ts';
import { parsePipelineManifests } from '../../functions/core/pipeline-manifest.ts';
import type { PromotionRecord } from '../../functions/core/ports.ts';
import { readFixture } from './fixtures.ts';
import { mergeRequestHookHeaders, mergeRequestHookPayload } from './gitlab-stand-in/webhooks.ts';

/*
 * GitLab's webhook deliveries as the tests of `POST /webhooks/gitlab` send them: the podinfo
 * pipeline with its staging promotions on a GitLab project (prod's stay GitHub pull requests),
 * its open promotion merge request, and the stand-in's "Merge Request Hook" body with overrides.
 */

export const GITLAB_PROJECT = 'platform/gitops/fleet';
const INSTANCE = 'https://gitlab.example.com';

/** The fixture podinfo pipeline, promoting into staging by merge requests on GitLab. */
export const gitlabPodinfoPipeline = (host = 'https://gitlab.example.com'): Pipeline => {
  const [pipeline] = parsePipelineManifests(
    readFixture('pipelines/podinfo.yaml').replace(
      /type: github\n(\s+)url: https:\/\/github\.com\/example-org\/fleet\n/,
      `type: gitlab\n$1url: ${host}/${GITLAB_PROJECT}\n`,
    ),
  ).pipelines as [Pipeline];
  return pipeline;
};

/** Promotion MR !7 into staging at 6.5.0, open. */
export const openedMergeRequestPromotion: PromotionRecord = {
  pipeline: { namespace: 'flux-system', name: 'podinfo' },
  environment: 'staging',
  revision: '6.5.0',
  state: 'opened',
  jobId: 'job-1',
  from: 'dev',
  eventTimestamp: '2026-11-20T16:00:00.000Z',
  updatedAt: '2026-11-20T16:01:00.000Z',
  pullRequest: {
    number: 7,
    url: `https://gitlab.example.com/${GITLAB_PROJECT}/-/merge_requests/7`,
    state: 'open',
  },
  timeline: {
    sourceDeployedAt: '2026-11-20T16:00:00.000Z',
    pullRequestAt: '2026-11-20T16:01:00.000Z',
  },
};

/**
 * The stand-in's "Merge Request Hook" body (gitlab-stand-in/webhooks.ts) of promotion MR !7 into
 * staging being merged; `attributes` and `project` override its fields (to make it another MR,
 * another project, or no hook at all).
 */
export const mergeRequestHook = (
  attributes: Record<string, unknown> = {},
  project: Record<string, unknown> = {},
): string => {
  const hook = mergeRequestHookPayload({
    action: 'merge',
    instanceUrl: INSTANCE,
    project: { id: 14, pathWithNamespace: GITLAB_PROJECT, defaultBranch: 'main' },
    mergeRequest: {
      id: 99,
      iid: 7,
      state: 'merged',
      sourceBranch: 'promotion-flux-system-podinfo-staging',
      targetBranch: 'main',
      title: 'Promote flux-system/podinfo in staging to 6.5.0',
      description: 'Promotes ...\n\npipeline-promoter: flux-system/podinfo/staging',
      mergeCommitSha: 'f00dfeed',
      lastCommitId: 'c0ffee',
      createdAt: '2026-11-20T16:01:00.000Z',
      updatedAt: '2026-11-20T16:20:00.000Z',
    },
  });
  return JSON.stringify({
    ...hook,
    project: { ...(hook.project as object), ...project },
    object_attributes: {
      ...(hook.object_attributes as object),
      merged_at: '2026-11-20T16:20:00Z',
      ...attributes,
    },
  });
};

/** The headers GitLab 17.4 and later send with a delivery (the token and ids given). */
export const gitlabHookHeaders = (
  token: string,
  delivery: string,
  event = 'Merge Request Hook',
): Record<string, string> => ({
  ...mergeRequestHookHeaders({ token, instanceUrl: INSTANCE, eventUuid: `event-${delivery}` }),
  'x-gitlab-event': event,
  'idempotency-key': delivery,
});
