import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signBody } from '../../functions/core/signature.ts';
import { type FakeGitLab, startFakeGitLab } from '../support/fake-gitlab.ts';
import { FIXTURE_HMAC_KEY, freshEvent } from '../support/fixtures.ts';
import { type RunningServe, startPromoterServe } from '../support/promoter-serve.ts';

/**
 * `promoter serve` promoting a Flux Kustomization through a self-managed GitLab, end to end: the
 * stand-in serves `/api/v4` and git (`git http-backend`, Basic auth as `oauth2`) on one port;
 * the project sits in a subgroup. staging's real kustomize-controller event
 * (`main@sha1:<commit>`) lands in prod's markers by suffix on the merge request's branch, a
 * person merges the merge request, GitLab's Merge Request Hook (`X-Gitlab-Token`) records it,
 * and prod's own event completes the promotion.
 */
const PROJECT = 'platform/gitops/fleet';
const WEBHOOK_SECRET = 'gitlab-webhook-secret-of-the-e2e-test';
const COMMIT = '6b3d5c0e9f2a4b1c8d7e6f5a4b3c2d1e0f9a8b7c';
const BRANCH = 'promotion-flux-system-apps-prod';

let gitlab: FakeGitLab;
let serve: RunningServe;
let url: string;
let logs: readonly Record<string, unknown>[] = [];

const waitFor: RunningServe['waitFor'] = (what, probe, ms) => serve.waitFor(what, probe, ms);

const marker = (suffix: string) =>
  `# {"$promotion": "flux-system:apps:prod${suffix === '' ? '' : `:${suffix}`}"}`;

/** prod's source, pinned: each field takes its part of staging's revision. */
const prodSource = (branch: string, commit: string) =>
  [
    'apiVersion: source.toolkit.fluxcd.io/v1',
    'kind: GitRepository',
    'metadata:',
    '  name: apps',
    '  namespace: flux-system',
    '  annotations:',
    `    example.com/promoted-revision: "${branch}@sha1:${commit}" ${marker('')}`,
    `    example.com/promoted-digest: sha1:${commit} ${marker('digest')}`,
    'spec:',
    '  url: https://gitlab.example.com/platform/apps',
    '  ref:',
    `    branch: ${branch} ${marker('ref')}`,
    `    commit: ${commit} ${marker('hash')}`,
    '',
  ].join('\n');

const AUTO_PROJECT = 'platform/web-fleet';
const AUTO_BRANCH = 'promotion-flux-system-web-prod';

const manifest = (
  name: string,
  cloneUrl: string,
  annotations = '',
) => `apiVersion: pipelines.weave.works/v1alpha1
kind: Pipeline
metadata:
  name: ${name}
  namespace: flux-system${annotations}
spec:
  appRef:
    apiVersion: kustomize.toolkit.fluxcd.io/v1
    kind: Kustomization
    name: ${name}
  environments:
    - name: staging
      targets:
        - namespace: flux-system
          clusterRef: {kind: GitopsCluster, name: staging}
    - name: prod
      targets:
        - namespace: flux-system
          clusterRef: {kind: GitopsCluster, name: prod}
  promotion:
    strategy:
      pull-request:
        type: gitlab
        url: ${cloneUrl}
        baseBranch: main
        secretRef:
          name: promotion-credentials
      secretRef:
        name: promotion-credentials
`;

const kustomizationEvent = (): string => freshEvent('kustomization-reconciliation-succeeded.json');

const post = (path: string, body: string) =>
  fetch(`${url}${path}`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'X-Signature': signBody(body, FIXTURE_HMAC_KEY),
    },
    body,
  });

beforeAll(async () => {
  gitlab = await startFakeGitLab();
  await gitlab.createRepository(PROJECT, {
    'clusters/prod/apps/source.yaml': prodSource('release', '0000000'),
    'README.md': 'the fleet\n',
  });
  // web's project merges only after a pipeline succeeded; its prod promotions merge themselves.
  await gitlab.createRepository(
    AUTO_PROJECT,
    {
      'clusters/prod/web/source.yaml': prodSource('release', '0000000').replaceAll(
        ':apps:',
        ':web:',
      ),
    },
    'main',
    { pipelineMustSucceed: true },
  );
  const pipelines = `${manifest('apps', gitlab.cloneUrl(PROJECT))}---\n${manifest(
    'web',
    gitlab.cloneUrl(AUTO_PROJECT),
    '\n  annotations:\n    pipeline-promoter/auto-merge.prod: "true"',
  )}`;
  const secrets = {
    'flux-system/promotion-credentials': { 'hmac-key': FIXTURE_HMAC_KEY, token: gitlab.token },
    'gitlab-webhook': { secret: WEBHOOK_SECRET },
  };
  serve = await startPromoterServe({ pipelines, secrets, args: ['--reconcile-interval', '1'] });
  url = serve.url;
  logs = serve.logs;
  gitlab.deliverWebhooksTo(`${url}/webhooks/gitlab`, WEBHOOK_SECRET, PROJECT);
  // web's project has no webhook: the reconcile sweep alone follows its merge request.
});

afterAll(async () => {
  await serve?.stop();
  await gitlab?.close();
});

describe('promoter serve through GitLab, end to end', () => {
  it('opens one merge request with the revision by suffix, and follows it to deployed', async () => {
    // Act: staging reports the commit twice (Flux retries); one merge request comes of it.
    const event = kustomizationEvent();
    const first = await post('/promotion/flux-system/apps/staging', event);
    const retried = await post('/promotion/flux-system/apps/staging', event);
    const mergeRequest = await waitFor('the merge request', () => gitlab.mergeRequests(PROJECT)[0]);
    await waitFor('the promotion opened', () =>
      logs.find((line) => line.message === 'promotion finished' && line.status === 'opened'),
    );
    const files = await gitlab.readFiles(PROJECT, BRANCH);
    await gitlab.mergeAsPerson(PROJECT, mergeRequest.iid);
    await gitlab.webhooksSettled();
    const merged = await waitFor('the merged state', async () => {
      const status = (await (await fetch(`${url}/pipelines/flux-system/apps`)).json()) as {
        environments: { name: string; promotion: { state: string } | null }[];
      };
      const prod = status.environments.find((environment) => environment.name === 'prod');
      return prod?.promotion?.state === 'merged' ? prod : undefined;
    });
    const deploy = await post('/promotion/flux-system/apps/prod', kustomizationEvent());
    const deployed = await waitFor('the deployed state', async () => {
      const status = (await (await fetch(`${url}/pipelines/flux-system/apps`)).json()) as {
        environments: {
          name: string;
          promotion: { state: string; pullRequest: { state: string; url: string } | null } | null;
        }[];
      };
      const prod = status.environments.find((environment) => environment.name === 'prod');
      return prod?.promotion?.state === 'deployed' ? prod : undefined;
    });

    // Assess
    expect([first.status, retried.status]).toEqual([202, 202]);
    expect(gitlab.mergeRequests(PROJECT)).toHaveLength(1);
    expect(mergeRequest).toMatchObject({
      title: `Promote flux-system/apps in prod to main@sha1:${COMMIT}`,
      sourceBranch: BRANCH,
      targetBranch: 'main',
    });
    expect(mergeRequest.description).toContain('pipeline-promoter: flux-system/apps/prod');
    expect(files['clusters/prod/apps/source.yaml']).toBe(prodSource('main', COMMIT));
    expect(files['README.md']).toBe('the fleet\n');
    expect(merged.promotion?.state).toBe('merged');
    expect(deploy.status).toBe(200);
    expect(deployed.promotion?.pullRequest).toMatchObject({ state: 'merged' });
    expect(gitlab.webhookDeliveries.map((delivery) => delivery.status)).toEqual([200]);
    // git authenticated as oauth2 with the token; the API with the same token.
    expect(gitlab.gitRequests).toContain(`POST /${PROJECT}.git/git-receive-pack`);
    expect(gitlab.requests.every((request) => request.auth !== 'none')).toBe(true);
    expect(JSON.stringify(logs)).not.toContain(gitlab.token);
  });

  it('merges an auto-merge promotion once its pipeline succeeded, at the pushed head, by the sweep', async () => {
    // Prepare
    const event = kustomizationEvent().replaceAll('"name":"apps"', '"name":"web"');

    // Act
    const answer = await post('/promotion/flux-system/web/staging', event);
    const mergeRequest = await waitFor(
      'the merge request',
      () => gitlab.mergeRequests(AUTO_PROJECT)[0],
    );
    const pushed = await waitFor('the pushed head', () =>
      gitlab.branchHead(AUTO_PROJECT, AUTO_BRANCH),
    );
    await waitFor('a sweep that found it blocked', () =>
      logs.find(
        (line) =>
          line.message === 'auto-merge blocked' && String(line.reason).includes('ci_must_pass'),
      ),
    );
    const stillOpen = gitlab.mergeRequest(AUTO_PROJECT, mergeRequest.iid)?.state;
    await gitlab.setPipeline(AUTO_PROJECT, mergeRequest.iid, 'success');
    const merged = await waitFor('the merge', () => {
      const current = gitlab.mergeRequest(AUTO_PROJECT, mergeRequest.iid);
      return current?.state === 'merged' ? current : undefined;
    });
    const recorded = await waitFor('the merged state', async () => {
      const status = (await (await fetch(`${url}/pipelines/flux-system/web`)).json()) as {
        environments: { name: string; promotion: { state: string } | null }[];
      };
      const prod = status.environments.find((environment) => environment.name === 'prod');
      return prod?.promotion?.state === 'merged' ? prod : undefined;
    });

    // Assess
    expect(answer.status).toBe(202);
    expect(stillOpen).toBe('opened');
    expect(merged.sha).toBe(pushed);
    expect(merged.mergedBy).toBe('promoter-bot');
    expect(recorded.promotion?.state).toBe('merged');
    expect((await gitlab.readFiles(AUTO_PROJECT, 'main'))['clusters/prod/web/source.yaml']).toBe(
      prodSource('main', COMMIT).replaceAll(':apps:', ':web:'),
    );
  });
});
