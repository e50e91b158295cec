import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { SmartHttpConfigRepository } from '../../functions/adapters/git/smart-http-config-repository.ts';
import {
  createGitLabMergeRequests,
  gitlabHost,
} from '../../functions/adapters/gitlab-merge-requests.ts';
import { strictAddressPolicy } from '../../functions/core/http.ts';
import type { PullRequestLookup, PullRequestRequest } from '../../functions/core/ports.ts';
import { editMarkers, isPromotableFile, needle } from '../../functions/core/promotion-markers.ts';
import { retryDelaySeconds } from '../../functions/core/retry-policy.ts';
import { caught } from '../support/caught.ts';
import { type FakeGitLab, startFakeGitLab } from '../support/fake-gitlab.ts';

/**
 * GitLabMergeRequests (real @gitbeaker/rest) against the GitLab stand-in on real bare
 * repositories: the rolling merge request per source branch, its states, closing with a note,
 * "merge when pipeline succeeds" and the sweep's merge, and GitLab's failures as PromoterErrors.
 */
const GROUP = 'acme';
const PROJECT = 'fleet';
const PATH = `${GROUP}/${PROJECT}`;
/** Requires a successful pipeline before merging. */
const GATED = 'fleet-gated';
const GATED_PATH = `${GROUP}/${GATED}`;
/** Has CI (a pipeline runs on each push) but does not require it to succeed, as GitLab's default. */
const CI = 'fleet-ci';
const CI_PATH = `${GROUP}/${CI}`;
const BRANCH = 'promotion-apps-podinfo-staging';
const READ_ONLY_TOKEN = 'glpat-readOnlyToken0000000000';
const MRS = '/projects/:id/merge_requests';
const MR = '/projects/:id/merge_requests/:iid';
const MERGE = '/projects/:id/merge_requests/:iid/merge';

describe('GitLabMergeRequests against the GitLab stand-in', () => {
  let gitlab: FakeGitLab;
  // Back-off and Retry-After seconds are 2 ms here: nothing sleeps.
  const mergeRequests = createGitLabMergeRequests({ retryAfterBaseValue: 2 });
  let branches = 0;

  const promotion = (overrides: Partial<PullRequestRequest> = {}): PullRequestRequest => ({
    repository: gitlab.repository(GROUP, PROJECT),
    token: gitlab.token,
    head: BRANCH,
    base: 'main',
    title: 'Promote apps/podinfo in staging to 6.5.0',
    body: 'Revision: 6.5.0\nFrom: dev\n\napps/podinfo/staging',
    ...overrides,
  });

  const lookup = (number: number, project = PROJECT, token = gitlab.token): PullRequestLookup => ({
    repository: gitlab.repository(GROUP, project),
    token,
    number,
  });

  /** A promotion branch with its own file (so that merges never conflict) and its open MR. */
  const openMergeRequest = async (project: string, files: Record<string, string> = {}) => {
    branches += 1;
    const environment = `env${branches}`;
    const head = `promotion-apps-podinfo-${environment}`;
    const sha = await gitlab.commitOnBranch(`${GROUP}/${project}`, head, {
      [`apps/podinfo/${environment}.yaml`]: `version: 6.5.${branches}\n`,
      ...files,
    });
    const result = await mergeRequests.upsert(
      promotion({
        repository: gitlab.repository(GROUP, project),
        head,
        title: `Promote apps/podinfo in ${environment} to 6.5.${branches}`,
      }),
    );
    return { iid: result.number, head, sha };
  };

  beforeAll(async () => {
    gitlab = await startFakeGitLab({ readOnlyTokens: [READ_ONLY_TOKEN] });
    const files = { 'apps/podinfo/staging.yaml': 'version: 6.4.0\n' };
    await gitlab.createRepository(PATH, files);
    await gitlab.createRepository(GATED_PATH, files, 'main', { pipelineMustSucceed: true });
    await gitlab.createRepository(CI_PATH, files, 'main', { ci: true });
    await gitlab.commitOnBranch(PATH, BRANCH, { 'apps/podinfo/staging.yaml': 'version: 6.5.0\n' });
  });

  afterAll(async () => {
    await gitlab?.close();
  });

  beforeEach(() => {
    gitlab.standIn.reset();
  });

  describe('upsert', () => {
    it('opens a merge request with GitLab shapes when none is open', async () => {
      // Prepare
      const request = promotion();

      // Act
      const result = await mergeRequests.upsert(request);

      // Assess
      expect(result).toEqual({
        action: 'opened',
        number: 1,
        url: `${gitlab.url}/${PATH}/-/merge_requests/1`,
      });
      expect(gitlab.mergeRequests(PATH)).toEqual([
        expect.objectContaining({
          iid: 1,
          state: 'opened',
          sourceBranch: BRANCH,
          targetBranch: 'main',
          title: request.title,
          description: request.body,
          removeSourceBranch: false,
          sha: await gitlab.branchHead(PATH, BRANCH),
        }),
      ]);
      expect(gitlab.standIn.requestCounts()).toEqual({ [`GET ${MRS}`]: 1, [`POST ${MRS}`]: 1 });
      const [list, create] = gitlab.requests;
      expect(list).toMatchObject({
        path: `/projects/${encodeURIComponent(PATH)}/merge_requests`,
        query: { state: 'opened', source_branch: BRANCH, target_branch: 'main' },
        auth: 'private-token',
        userAgent: 'pipeline-promoter',
      });
      expect(create?.body).toEqual({
        source_branch: BRANCH,
        target_branch: 'main',
        title: request.title,
        description: request.body,
        remove_source_branch: false,
      });
    });

    it('updates the same merge request on the next promotion, and writes nothing when it already says the same', async () => {
      // Prepare
      const first = await mergeRequests.upsert(promotion());

      // Act
      const second = await mergeRequests.upsert(
        promotion({ title: 'Promote apps/podinfo in staging to 6.6.0', body: 'Revision: 6.6.0' }),
      );
      gitlab.standIn.clearRequests();
      const third = await mergeRequests.upsert(
        promotion({ title: 'Promote apps/podinfo in staging to 6.6.0', body: 'Revision: 6.6.0' }),
      );

      // Assess
      expect(second).toEqual({ action: 'updated', number: first.number, url: first.url });
      expect(third).toEqual(second);
      expect(gitlab.mergeRequests(PATH)).toEqual([
        expect.objectContaining({
          iid: first.number,
          title: 'Promote apps/podinfo in staging to 6.6.0',
          description: 'Revision: 6.6.0',
        }),
      ]);
      expect(gitlab.standIn.requestCounts()).toEqual({ [`GET ${MRS}`]: 1 });
    });

    it('opens a new merge request once the last one was merged', async () => {
      // Prepare
      const first = await mergeRequests.upsert(promotion());
      await gitlab.mergeAsPerson(PATH, first.number);
      await gitlab.commitOnBranch(PATH, BRANCH, {
        'apps/podinfo/staging.yaml': 'version: 6.7.0\n',
      });

      // Act
      const second = await mergeRequests.upsert(promotion());

      // Assess
      expect(second).toMatchObject({ action: 'opened', number: first.number + 1 });
      expect(gitlab.mergeRequests(PATH).map((mr) => mr.state)).toEqual(['merged', 'opened']);
    });

    it('finds and updates the merge request when the create races another (409)', async () => {
      // Prepare
      gitlab.injectFault({ method: 'POST', route: MRS, fault: { kind: 'race' } });

      // Act
      const result = await mergeRequests.upsert(promotion());

      // Assess
      expect(result).toMatchObject({ action: 'updated', number: 1 });
      const [only, ...others] = gitlab.mergeRequests(PATH);
      expect(others).toEqual([]);
      expect(only).toMatchObject({ author: 'other-worker', title: promotion().title });
      expect(gitlab.requests.map((request) => `${request.method} ${request.status}`)).toEqual([
        'GET 200',
        'POST 409',
        'GET 200',
        'PUT 200',
      ]);
    });

    it('keeps one merge request when a create landed but its answer was a 502', async () => {
      // Prepare
      gitlab.injectFault({ method: 'POST', route: MRS, fault: { kind: 'lost-answer' } });

      // Act
      const result = await mergeRequests.upsert(promotion());

      // Assess
      expect(result).toMatchObject({ action: 'updated', number: 1 });
      expect(gitlab.mergeRequests(PATH)).toHaveLength(1);
    });

    it('opens merge requests in a project of nested groups', async () => {
      // Prepare
      const nested = 'acme/platform/team-a';
      await gitlab.createRepository(`${nested}/fleet`, { 'README.md': 'fleet\n' });
      await gitlab.commitOnBranch(`${nested}/fleet`, BRANCH, { 'README.md': 'promoted\n' });

      // Act
      const result = await mergeRequests.upsert(
        promotion({ repository: gitlab.repository(nested, 'fleet') }),
      );

      // Assess
      expect(result).toEqual({
        action: 'opened',
        number: 1,
        url: `${gitlab.url}/${nested}/fleet/-/merge_requests/1`,
      });
      expect(gitlab.requests[0]?.path).toBe(
        '/projects/acme%2Fplatform%2Fteam-a%2Ffleet/merge_requests',
      );
      expect(gitlab.mergeRequests(`${nested}/fleet`)).toHaveLength(1);
    });
  });

  describe('get and close', () => {
    it('reads open, merged and closed merge requests, never as not-modified', async () => {
      // Prepare
      const open = await openMergeRequest(PROJECT);
      const merged = await openMergeRequest(PROJECT);
      const closed = await openMergeRequest(PROJECT);
      const mergeCommit = await gitlab.mergeAsPerson(PATH, merged.iid);
      await gitlab.closeAsPerson(PATH, closed.iid);

      // Act
      const views = [
        await mergeRequests.get(lookup(open.iid)),
        await mergeRequests.get(lookup(open.iid)),
        await mergeRequests.get(lookup(merged.iid)),
        await mergeRequests.get(lookup(closed.iid)),
      ];

      // Assess
      const [first, again, mergedView, closedView] = views;
      expect(first).toEqual({
        number: open.iid,
        state: 'open',
        title: expect.stringMatching(/^Promote apps\/podinfo in env/),
        headRef: open.head,
        headSha: open.sha,
      });
      expect(again).toEqual(first);
      expect(mergedView).toEqual({
        number: merged.iid,
        state: 'merged',
        title: expect.any(String),
        headRef: merged.head,
        headSha: merged.sha,
        mergedAt: gitlab.mergeRequest(PATH, merged.iid)?.mergedAt,
        mergeCommit,
      });
      expect(closedView).toMatchObject({
        number: closed.iid,
        state: 'closed',
        headSha: closed.sha,
      });
      expect(closedView).not.toHaveProperty('mergeCommit');
      expect(await gitlab.branchHead(PATH, 'main')).toBe(mergeCommit);
    });

    it('closes a merge request with a note saying why', async () => {
      // Prepare
      const { iid } = await openMergeRequest(PROJECT);
      const comment = 'main already holds 6.5.0: this promotion is stale.';

      // Act
      await mergeRequests.close(lookup(iid), comment);

      // Assess
      expect(gitlab.mergeRequest(PATH, iid)).toMatchObject({ state: 'closed' });
      expect(gitlab.notes(PATH, iid)).toEqual([
        expect.objectContaining({ body: comment, author: 'promoter-bot' }),
      ]);
      const writes = gitlab.requests.filter((request) => request.method !== 'GET');
      expect(
        writes.slice(-2).map((request) => [request.method, request.route, request.body]),
      ).toEqual([
        ['POST', `${MR}/notes`, { body: comment }],
        ['PUT', MR, { state_event: 'close' }],
      ]);
    });
  });

  describe('enableAutoMerge', () => {
    it('sets merge when pipeline succeeds on a running pipeline; GitLab merges the expected head when it passes', async () => {
      // Prepare
      const { iid, sha } = await openMergeRequest(GATED);
      await gitlab.setPipeline(GATED_PATH, iid, 'running');
      const base = await gitlab.branchHead(GATED_PATH, 'main');

      // Act
      const answer = await mergeRequests.enableAutoMerge({
        ...lookup(iid, GATED),
        expectedHead: sha,
      });
      const before = gitlab.mergeRequest(GATED_PATH, iid);
      await gitlab.setPipeline(GATED_PATH, iid, 'success');

      // Assess
      expect(answer).toBe('enabled');
      expect(before).toMatchObject({
        state: 'opened',
        mergeWhenPipelineSucceeds: true,
        autoMergeSha: sha,
      });
      const merge = gitlab.requests.find((request) => request.route === MERGE);
      expect(merge?.body).toEqual({ merge_when_pipeline_succeeds: true, auto_merge: true, sha });
      const after = gitlab.mergeRequest(GATED_PATH, iid);
      expect(after).toMatchObject({ state: 'merged' });
      const main = await gitlab.branchHead(GATED_PATH, 'main');
      expect(main).toBe(after?.mergeCommitSha);
      expect(
        (await gitlab.git(GATED_PATH, ['rev-list', '--parents', '-n', '1', main ?? '']))
          .split(' ')
          .slice(1),
      ).toEqual([base, sha]);
      expect(await mergeRequests.get(lookup(iid, GATED))).toMatchObject({
        state: 'merged',
        mergeCommit: main,
      });
    });

    it('asks GitLab nothing while the head has no pipeline of its own yet, so that GitLab does not merge at once', async () => {
      // Prepare: no pipeline yet, with and without "Pipelines must succeed"; one of an older commit.
      const gated = await openMergeRequest(GATED);
      const plain = await openMergeRequest(PROJECT);
      const repushed = await openMergeRequest(PROJECT);
      await gitlab.setPipeline(PATH, repushed.iid, 'success');
      const newHead = await gitlab.commitOnBranch(PATH, repushed.head, {
        'apps/podinfo/again.yaml': 'version: 6.5.99\n',
      });
      const main = await gitlab.branchHead(PATH, 'main');

      // Act
      const answers = [
        await mergeRequests.enableAutoMerge({
          ...lookup(gated.iid, GATED),
          expectedHead: gated.sha,
        }),
        await mergeRequests.enableAutoMerge({ ...lookup(plain.iid), expectedHead: plain.sha }),
        await mergeRequests.enableAutoMerge({ ...lookup(repushed.iid), expectedHead: newHead }),
      ];

      // Assess
      expect(answers).toEqual(['unavailable', 'unavailable', 'unavailable']);
      expect(gitlab.requests.some((request) => request.route === MERGE)).toBe(false);
      expect(await gitlab.branchHead(PATH, 'main')).toBe(main);
      for (const [project, iid] of [
        [GATED_PATH, gated.iid],
        [PATH, plain.iid],
        [PATH, repushed.iid],
      ] as const) {
        expect(gitlab.mergeRequest(project, iid)).toMatchObject({
          state: 'opened',
          mergeWhenPipelineSucceeds: false,
        });
      }
    });

    it('is enabled for a merge request already merged, and unavailable for a failed pipeline', async () => {
      // Prepare
      const merged = await openMergeRequest(PROJECT);
      await gitlab.mergeAsPerson(PATH, merged.iid);
      const failed = await openMergeRequest(PROJECT);
      await gitlab.setPipeline(PATH, failed.iid, 'failed');

      // Act
      const answers = [
        await mergeRequests.enableAutoMerge({ ...lookup(merged.iid), expectedHead: merged.sha }),
        await mergeRequests.enableAutoMerge({ ...lookup(failed.iid), expectedHead: failed.sha }),
      ];

      // Assess
      expect(answers).toEqual(['enabled', 'unavailable']);
      expect(gitlab.requests.some((request) => request.route === MERGE)).toBe(false);
      expect(gitlab.mergeRequest(PATH, failed.iid)?.state).toBe('opened');
    });

    it('does not ask GitLab to merge a head other than the expected one', async () => {
      // Prepare
      const { iid, sha, head } = await openMergeRequest(GATED);
      await gitlab.commitOnBranch(GATED_PATH, head, { 'by-a-person.txt': 'pushed\n' });
      await gitlab.setPipeline(GATED_PATH, iid, 'running');

      // Act
      const answer = await mergeRequests.enableAutoMerge({
        ...lookup(iid, GATED),
        expectedHead: sha,
      });

      // Assess
      expect(answer).toBe('unavailable');
      expect(gitlab.requests.some((request) => request.route === MERGE)).toBe(false);
      expect(gitlab.mergeRequest(GATED_PATH, iid)).toMatchObject({
        mergeWhenPipelineSucceeds: false,
      });
    });

    it('is unavailable when the head moves between the read and the merge (409)', async () => {
      // Prepare
      const { iid, sha } = await openMergeRequest(GATED);
      await gitlab.setPipeline(GATED_PATH, iid, 'running');
      gitlab.injectFault({
        method: 'PUT',
        route: MERGE,
        fault: {
          kind: 'status',
          status: 409,
          body: { message: `SHA does not match HEAD of source branch: ${'f'.repeat(40)}` },
        },
      });

      // Act
      const answer = await mergeRequests.enableAutoMerge({
        ...lookup(iid, GATED),
        expectedHead: sha,
      });

      // Assess
      expect(answer).toBe('unavailable');
      expect(gitlab.mergeRequest(GATED_PATH, iid)).toMatchObject({ state: 'opened' });
    });
  });

  describe('mergeWhenReady', () => {
    it('does not merge while the pipeline runs without "Pipelines must succeed": it sets merge when pipeline succeeds, and GitLab merges on success', async () => {
      // Prepare
      const { iid, sha } = await openMergeRequest(PROJECT);
      await gitlab.setPipeline(PATH, iid, 'running');
      const main = await gitlab.branchHead(PATH, 'main');
      const statusWhileRunning = await gitlab.standIn.detailedMergeStatus(PATH, iid);

      // Act: two sweeps while it runs, then the pipeline passes, then a third sweep.
      const whileRunning = [
        await mergeRequests.mergeWhenReady({ ...lookup(iid), expectedHead: sha }),
        await mergeRequests.mergeWhenReady({ ...lookup(iid), expectedHead: sha }),
      ];
      const mainWhileRunning = await gitlab.branchHead(PATH, 'main');
      const beforeSuccess = gitlab.mergeRequest(PATH, iid);
      await gitlab.setPipeline(PATH, iid, 'success');
      const afterSuccess = await mergeRequests.mergeWhenReady({
        ...lookup(iid),
        expectedHead: sha,
      });

      // Assess
      expect(statusWhileRunning).toBe('mergeable');
      expect(whileRunning).toEqual([
        {
          status: 'pending',
          reason: expect.stringMatching(/merges it when its pipeline succeeds.*set now/),
        },
        {
          status: 'pending',
          reason: expect.stringContaining('merges it when its pipeline succeeds'),
        },
      ]);
      expect(mainWhileRunning).toBe(main);
      expect(beforeSuccess).toMatchObject({
        state: 'opened',
        mergeWhenPipelineSucceeds: true,
        autoMergeSha: sha,
      });
      expect(
        gitlab.requests.filter((request) => request.route === MERGE).map((request) => request.body),
      ).toEqual([{ merge_when_pipeline_succeeds: true, auto_merge: true, sha }]);
      const merged = gitlab.mergeRequest(PATH, iid);
      expect(merged).toMatchObject({ state: 'merged', mergedBy: 'promoter-bot', sha });
      expect(afterSuccess).toEqual({ status: 'merged', mergeCommit: merged?.mergeCommitSha });
    });

    it('follows a project with CI from the push: unavailable before the pipeline, merge when pipeline succeeds once it runs, again after a new push', async () => {
      // Prepare: each push runs a pipeline; the promoter pushes a second head later.
      const { iid, sha, head } = await openMergeRequest(CI);
      const main = await gitlab.branchHead(CI_PATH, 'main');
      const first = await mergeRequests.enableAutoMerge({ ...lookup(iid, CI), expectedHead: sha });
      const second = await gitlab.commitOnBranch(CI_PATH, head, {
        'apps/podinfo/second.yaml': 'version: 6.6.0\n',
      });
      const abortedOnPush = gitlab.mergeRequest(CI_PATH, iid);

      // Act
      const sweep = await mergeRequests.mergeWhenReady({
        ...lookup(iid, CI),
        expectedHead: second,
      });
      const mainWhileRunning = await gitlab.branchHead(CI_PATH, 'main');
      await gitlab.setPipeline(CI_PATH, iid, 'success');

      // Assess
      expect(first).toBe('enabled');
      expect(abortedOnPush).toMatchObject({ state: 'opened', mergeWhenPipelineSucceeds: false });
      expect(sweep).toEqual({
        status: 'pending',
        reason: expect.stringContaining('merges it when its pipeline succeeds'),
      });
      expect(mainWhileRunning).toBe(main);
      expect(
        gitlab.requests.filter((request) => request.route === MERGE).map((request) => request.body),
      ).toEqual([
        { merge_when_pipeline_succeeds: true, auto_merge: true, sha },
        { merge_when_pipeline_succeeds: true, auto_merge: true, sha: second },
      ]);
      expect(gitlab.mergeRequest(CI_PATH, iid)).toMatchObject({ state: 'merged', sha: second });
    });

    it('sets merge when pipeline succeeds on the running pipeline where it must succeed, and is pending while GitLab is still checking', async () => {
      // Prepare
      const running = await openMergeRequest(GATED);
      await gitlab.setPipeline(GATED_PATH, running.iid, 'running');
      const checking = await openMergeRequest(PROJECT);
      gitlab.standIn.setDetailedMergeStatus(PATH, checking.iid, 'checking', 1);

      // Act
      const attempts = [
        await mergeRequests.mergeWhenReady({
          ...lookup(running.iid, GATED),
          expectedHead: running.sha,
        }),
        await mergeRequests.mergeWhenReady({ ...lookup(checking.iid), expectedHead: checking.sha }),
      ];

      // Assess
      expect(attempts).toEqual([
        {
          status: 'pending',
          reason: expect.stringContaining('merges it when its pipeline succeeds'),
        },
        { status: 'pending', reason: expect.stringContaining('checking') },
      ]);
      expect(gitlab.requests.filter((request) => request.route === MERGE)).toHaveLength(1);
      expect(gitlab.mergeRequest(GATED_PATH, running.iid)).toMatchObject({
        state: 'opened',
        mergeWhenPipelineSucceeds: true,
      });
      expect(gitlab.mergeRequest(PATH, checking.iid)?.state).toBe('opened');
    });

    it("waits for the pipeline of the head when GitLab's head pipeline is of an older commit", async () => {
      // Prepare: the promoter pushed a new head; GitLab has not created its pipeline yet.
      const { iid, head } = await openMergeRequest(PROJECT);
      await gitlab.setPipeline(PATH, iid, 'success');
      const newHead = await gitlab.commitOnBranch(PATH, head, {
        'apps/podinfo/again.yaml': 'version: 6.5.98\n',
      });

      // Act
      const attempt = await mergeRequests.mergeWhenReady({ ...lookup(iid), expectedHead: newHead });

      // Assess
      expect(attempt).toEqual({
        status: 'pending',
        reason: expect.stringContaining(`no pipeline of the head ${newHead} yet`),
      });
      expect(gitlab.requests.some((request) => request.route === MERGE)).toBe(false);
      expect(gitlab.mergeRequest(PATH, iid)?.state).toBe('opened');
    });

    it("is blocked by a failed or canceled pipeline (whether or not it must succeed), missing approval or a conflict, with GitLab's reason", async () => {
      // Prepare
      const failed = await openMergeRequest(PROJECT);
      await gitlab.setPipeline(PATH, failed.iid, 'failed');
      const canceled = await openMergeRequest(GATED);
      await gitlab.setPipeline(GATED_PATH, canceled.iid, 'canceled');
      const unapproved = await openMergeRequest(PROJECT);
      gitlab.standIn.setDetailedMergeStatus(PATH, unapproved.iid, 'not_approved');
      const conflicting = await openMergeRequest(PROJECT, {
        'apps/podinfo/staging.yaml': 'version: 9.9.9\n',
      });
      await gitlab.commitOnBranch(PATH, 'main', {
        'apps/podinfo/staging.yaml': 'version: 7.0.0\n',
      });

      // Act
      const attempts = [
        await mergeRequests.mergeWhenReady({ ...lookup(failed.iid), expectedHead: failed.sha }),
        await mergeRequests.mergeWhenReady({
          ...lookup(canceled.iid, GATED),
          expectedHead: canceled.sha,
        }),
        await mergeRequests.mergeWhenReady({
          ...lookup(unapproved.iid),
          expectedHead: unapproved.sha,
        }),
        await mergeRequests.mergeWhenReady({
          ...lookup(conflicting.iid),
          expectedHead: conflicting.sha,
        }),
      ];

      // Assess
      expect(attempts).toEqual([
        { status: 'blocked', reason: expect.stringContaining('(status failed)') },
        { status: 'blocked', reason: expect.stringContaining('(status canceled)') },
        { status: 'blocked', reason: expect.stringContaining('not_approved') },
        { status: 'blocked', reason: expect.stringContaining('conflict') },
      ]);
      expect(gitlab.requests.some((request) => request.route === MERGE)).toBe(false);
      expect(gitlab.mergeRequest(PATH, failed.iid)?.state).toBe('opened');
    });

    it('merges with sha in a project without CI (no pipeline at all) once mergeable', async () => {
      // Prepare
      const { iid, sha } = await openMergeRequest(PROJECT);

      // Act
      const attempt = await mergeRequests.mergeWhenReady({ ...lookup(iid), expectedHead: sha });

      // Assess
      const main = await gitlab.branchHead(PATH, 'main');
      expect(attempt).toEqual({ status: 'merged', mergeCommit: main });
      expect(
        gitlab.requests.filter((request) => request.route === MERGE).map((request) => request.body),
      ).toEqual([{ sha }]);
      expect(gitlab.mergeRequest(PATH, iid)).toMatchObject({ state: 'merged', sha });
    });

    it('merges the expected head once the pipeline passed', async () => {
      // Prepare
      const { iid, sha } = await openMergeRequest(GATED);
      await gitlab.setPipeline(GATED_PATH, iid, 'success');

      // Act
      const attempt = await mergeRequests.mergeWhenReady({
        ...lookup(iid, GATED),
        expectedHead: sha,
      });

      // Assess
      const main = await gitlab.branchHead(GATED_PATH, 'main');
      expect(attempt).toEqual({ status: 'merged', mergeCommit: main });
      expect(gitlab.requests.find((request) => request.route === MERGE)?.body).toEqual({ sha });
      expect(gitlab.mergeRequest(GATED_PATH, iid)).toMatchObject({
        state: 'merged',
        mergeCommitSha: main,
      });
    });

    it('answers merged for a merge request already merged, and blocked for a closed one', async () => {
      // Prepare
      const merged = await openMergeRequest(PROJECT);
      const mergeCommit = await gitlab.mergeAsPerson(PATH, merged.iid);
      const closed = await openMergeRequest(PROJECT);
      await gitlab.closeAsPerson(PATH, closed.iid);

      // Act
      const attempts = [
        await mergeRequests.mergeWhenReady({ ...lookup(merged.iid), expectedHead: merged.sha }),
        await mergeRequests.mergeWhenReady({ ...lookup(closed.iid), expectedHead: closed.sha }),
      ];

      // Assess
      expect(attempts).toEqual([
        { status: 'merged', mergeCommit },
        { status: 'blocked', reason: 'the merge request is closed, not open' },
      ]);
    });

    it('does not merge when the head moved, before the read or between the read and the merge', async () => {
      // Prepare
      const moved = await openMergeRequest(PROJECT);
      const pushed = await gitlab.commitOnBranch(PATH, moved.head, {
        'by-a-person.txt': 'pushed\n',
      });
      const racing = await openMergeRequest(PROJECT);
      gitlab.injectFault({
        method: 'PUT',
        route: MERGE,
        fault: {
          kind: 'status',
          status: 409,
          body: { message: `SHA does not match HEAD of source branch: ${'e'.repeat(40)}` },
        },
      });
      const main = await gitlab.branchHead(PATH, 'main');

      // Act
      const attempts = [
        await mergeRequests.mergeWhenReady({ ...lookup(moved.iid), expectedHead: moved.sha }),
        await mergeRequests.mergeWhenReady({ ...lookup(racing.iid), expectedHead: racing.sha }),
      ];

      // Assess
      expect(attempts).toEqual([
        {
          status: 'blocked',
          reason: expect.stringContaining(`is at ${pushed}, not the promoted ${moved.sha}`),
        },
        { status: 'blocked', reason: expect.stringContaining('SHA does not match HEAD') },
      ]);
      expect(await gitlab.branchHead(PATH, 'main')).toBe(main);
      expect(gitlab.mergeRequests(PATH).map((mr) => mr.state)).toEqual(['opened', 'opened']);
    });
  });

  describe('failures', () => {
    it('fails permanently on a bad token (401), without retrying or leaking it', async () => {
      // Prepare
      const token = 'glpat-notAValidToken999999';

      // Act
      const error = await caught(mergeRequests.upsert(promotion({ token })));

      // Assess
      expect(error).toMatchObject({
        code: 'GITLAB_AUTH_FAILED',
        retryable: false,
        data: { status: 401 },
      });
      expect(error.message).toContain(PATH);
      expect(error.message).toMatch(/401 Unauthorized.*api scope/);
      expect(inspect(error, { depth: 6 })).not.toContain(token);
      expect(JSON.stringify(error.data)).not.toContain(token);
      expect(gitlab.requests).toHaveLength(1);
    });

    it('fails permanently when a read_api token tries to write (403), saying the token needs the api scope', async () => {
      // Act
      const error = await caught(mergeRequests.upsert(promotion({ token: READ_ONLY_TOKEN })));

      // Assess
      expect(error).toMatchObject({
        code: 'GITLAB_AUTH_FAILED',
        retryable: false,
        data: { status: 403 },
      });
      expect(error.message).toMatch(/insufficient_scope/);
      expect(error.message).toMatch(/api scope/);
      expect(error.message).not.toContain(READ_ONLY_TOKEN);
    });

    it('fails permanently when the project or the merge request does not exist (404)', async () => {
      // Act
      const project = await caught(
        mergeRequests.upsert(promotion({ repository: gitlab.repository(GROUP, 'nope') })),
      );
      const mergeRequest = await caught(mergeRequests.get(lookup(4242)));

      // Assess
      expect(project).toMatchObject({ code: 'GITLAB_NOT_FOUND', retryable: false });
      expect(project.message).toMatch(/404 Project Not Found/);
      expect(project.message).toContain(`${GROUP}/nope`);
      expect(mergeRequest).toMatchObject({ code: 'GITLAB_NOT_FOUND', retryable: false });
      expect(mergeRequest.message).toContain('read merge request !4242');
    });

    it('fails permanently when GitLab rejects the merge request (source branch missing)', async () => {
      // Act
      const error = await caught(mergeRequests.upsert(promotion({ head: 'no-such-branch' })));

      // Assess
      expect(error).toMatchObject({
        code: 'GITLAB_REJECTED',
        retryable: false,
        data: { status: 400 },
      });
      expect(error.message).toMatch(/Source branch "no-such-branch" does not exist/);
    });

    it('retries a 500 and a reset connection, and opens one merge request', async () => {
      // Prepare
      gitlab.injectFault({ method: 'GET', route: MRS, fault: { kind: 'connection-reset' } });
      gitlab.injectFault({ method: 'POST', route: MRS, fault: { kind: 'status', status: 500 } });

      // Act
      const result = await mergeRequests.upsert(promotion());

      // Assess
      expect(result).toMatchObject({ action: 'opened', number: 1 });
      expect(gitlab.requests.map((request) => `${request.method} ${request.status}`)).toEqual([
        'GET 0',
        'GET 200',
        'POST 500',
        'POST 201',
      ]);
    });

    it("does not retry a note's POST after a 502 or a reset connection (it could show twice)", async () => {
      // Prepare
      const { iid } = await openMergeRequest(PROJECT);
      gitlab.injectFault({
        method: 'POST',
        route: `${MR}/notes`,
        fault: { kind: 'status', status: 502 },
      });
      gitlab.injectFault({
        method: 'POST',
        route: `${MR}/notes`,
        fault: { kind: 'connection-reset' },
      });
      gitlab.standIn.clearRequests();

      // Act
      const badGateway = await caught(mergeRequests.close(lookup(iid), 'stale'));
      const reset = await caught(mergeRequests.close(lookup(iid), 'stale'));

      // Assess
      for (const error of [badGateway, reset]) {
        expect(error).toMatchObject({ code: 'GITLAB_UNAVAILABLE', retryable: true });
        expect(error.message).toContain(`comment on merge request !${iid}`);
      }
      expect(gitlab.requests.map((request) => `${request.method} ${request.status}`)).toEqual([
        'POST 502',
        'POST 0',
      ]);
      expect(gitlab.mergeRequest(PATH, iid)).toMatchObject({ state: 'opened', notes: [] });
    });

    it('gives up on persistent 5xx after bounded retries, retryable', async () => {
      // Prepare
      gitlab.injectFault({ route: MRS, times: 10, fault: { kind: 'status', status: 503 } });

      // Act
      const error = await caught(mergeRequests.upsert(promotion()));

      // Assess
      expect(error).toMatchObject({
        code: 'GITLAB_UNAVAILABLE',
        retryable: true,
        data: { status: 503 },
      });
      expect(error.message).toContain(
        `find the open merge request from ${BRANCH} into main in ${PATH}`,
      );
      expect(gitlab.requests).toHaveLength(4);
    });

    it('waits out a short 429 Retry-After, and hands a long one to the queue in RetryHint shape', async () => {
      // Prepare
      gitlab.injectFault({
        method: 'GET',
        route: MRS,
        fault: { kind: 'rate-limit', retryAfterSeconds: 1 },
      });
      const waited = await mergeRequests.upsert(promotion());
      gitlab.injectFault({
        method: 'GET',
        route: MR,
        fault: { kind: 'rate-limit', retryAfterSeconds: 600 },
      });

      // Act
      const error = await caught(mergeRequests.get(lookup(waited.number)));

      // Assess
      expect(waited).toMatchObject({ action: 'opened' });
      expect(error).toMatchObject({
        code: 'GITLAB_UNAVAILABLE',
        retryable: true,
        data: { status: 429, retryAfterSeconds: 600, rateLimit: 'primary' },
      });
      expect(error.message).toMatch(/rate-limited.*retry after 600 s/);
      expect(retryDelaySeconds(1, error)).toBe(600);
    });

    it('gives up a call at its deadline', async () => {
      // Prepare
      const slow = createGitLabMergeRequests({ retryAfterBaseValue: 60_000, timeoutMs: 100 });
      gitlab.injectFault({ method: 'GET', route: MRS, fault: { kind: 'status', status: 502 } });

      // Act
      const error = await caught(slow.upsert(promotion()));

      // Assess
      expect(error).toMatchObject({ code: 'GITLAB_UNAVAILABLE', retryable: true });
      expect(error.message).toMatch(/did not answer within 100 ms/);
    });

    it('connects only where the address policy allows', async () => {
      // Prepare
      const refusals: string[] = [];
      const strict = createGitLabMergeRequests({
        addressPolicy: strictAddressPolicy(),
        onRefusedConnection: (refusal) => refusals.push(refusal.message),
      });

      // Act
      const error = await caught(strict.upsert(promotion()));

      // Assess
      expect(error).toMatchObject({ code: 'HOST_REFUSED', retryable: false });
      expect(refusals).toHaveLength(1);
      expect(gitlab.requests).toHaveLength(0);
    });

    it('refuses plain http to a host that is not loopback, and an API URL without /api/v4', async () => {
      // Act
      const insecure = await caught(
        mergeRequests.upsert(
          promotion({
            repository: {
              ...gitlab.repository(GROUP, PROJECT),
              apiBaseUrl: 'http://gitlab.example.com/api/v4',
            },
          }),
        ),
      );
      const wrongPath = await caught(
        mergeRequests.upsert(
          promotion({
            repository: {
              ...gitlab.repository(GROUP, PROJECT),
              apiBaseUrl: `${gitlab.url}/api/v3`,
            },
          }),
        ),
      );

      // Assess
      expect(insecure).toMatchObject({ code: 'INVALID_CONFIG' });
      expect(wrongPath).toMatchObject({ code: 'INVALID_CONFIG' });
      expect(wrongPath.message).toMatch(/does not end in \/api\/v4/);
    });
  });

  it('derives the host gitbeaker takes from the API base URL', () => {
    expect(gitlabHost('https://gitlab.com/api/v4')).toBe('https://gitlab.com');
    expect(gitlabHost('https://gitlab.example.com:8443/api/v4/')).toBe(
      'https://gitlab.example.com:8443',
    );
    expect(gitlabHost('https://example.com/gitlab/api/v4')).toBe('https://example.com/gitlab');
  });
});

describe('GitLabMergeRequests on a self-managed GitLab with a port and a relative URL root', () => {
  let gitlab: FakeGitLab;
  let cacheDir: string;

  beforeAll(async () => {
    gitlab = await startFakeGitLab({ relativeUrlRoot: '/gitlab', hostname: 'localhost' });
    cacheDir = await mkdtemp(join(tmpdir(), 'gitlab-promotion-cache-'));
  });

  afterAll(async () => {
    await gitlab?.close();
    await rm(cacheDir, { recursive: true, force: true });
  });

  it('pushes the promotion branch with the git adapter as oauth2:{token}, then opens its merge request', async () => {
    // Prepare
    const project = 'platform/apps/fleet';
    const base = await gitlab.createRepository(project, {
      'clusters/prod/podinfo.yaml': 'version: 6.4.0 # {"$promotion": "flux-system:podinfo:prod"}\n',
    });
    const repository = gitlab.repository('platform/apps', 'fleet');
    const git = new SmartHttpConfigRepository({ cacheDir, retryBaseDelayMs: 2 });
    const branch = 'promotion-flux-system-podinfo-prod';
    const target = { namespace: 'flux-system', name: 'podinfo', environment: 'prod' };

    // Act
    const pushed = await git.preparePromotionBranch({
      repository,
      credentials: { username: 'oauth2', password: gitlab.token },
      baseBranch: 'main',
      branch,
      includePath: isPromotableFile,
      needle,
      edit: (_path, content) => editMarkers(content, target, '6.5.0'),
      commit: {
        message: 'Promote flux-system/podinfo in prod to 6.5.0',
        author: { name: 'Pipeline Promoter', email: 'promoter@example.com' },
      },
    });
    const opened = await createGitLabMergeRequests({ retryAfterBaseValue: 2 }).upsert({
      repository,
      token: gitlab.token,
      head: branch,
      base: 'main',
      title: 'Promote flux-system/podinfo in prod to 6.5.0',
      body: 'flux-system/podinfo/prod',
    });

    // Assess
    expect(repository.apiBaseUrl).toBe(`http://localhost:${gitlab.port}/gitlab/api/v4`);
    expect(pushed).toMatchObject({
      status: 'pushed',
      baseCommit: base,
      changedFiles: ['clusters/prod/podinfo.yaml'],
    });
    expect(await gitlab.readFiles(project, branch)).toEqual({
      'clusters/prod/podinfo.yaml': 'version: 6.5.0 # {"$promotion": "flux-system:podinfo:prod"}\n',
    });
    expect(opened).toEqual({
      action: 'opened',
      number: 1,
      url: `http://localhost:${gitlab.port}/gitlab/${project}/-/merge_requests/1`,
    });
    expect(gitlab.mergeRequest(project, 1)?.sha).toBe(
      pushed.status === 'pushed' ? pushed.commit : '',
    );
    expect(gitlab.gitRequests).toContain(`POST /${project}.git/git-receive-pack`);
  });

  it('refuses git credentials whose username is not oauth2', async () => {
    // Prepare
    const project = 'platform/apps/other';
    await gitlab.createRepository(project, { 'a.yaml': 'v: 1 # {"$promotion": "ns:app:prod"}\n' });
    const git = new SmartHttpConfigRepository({ cacheDir, retryBaseDelayMs: 2 });

    // Act
    const error = await caught(
      git.preparePromotionBranch({
        repository: gitlab.repository('platform/apps', 'other'),
        credentials: { username: 'x-access-token', password: gitlab.token },
        baseBranch: 'main',
        branch: 'promotion-ns-app-prod',
        includePath: isPromotableFile,
        needle,
        edit: (_path, content) =>
          editMarkers(content, { namespace: 'ns', name: 'app', environment: 'prod' }, '2'),
        commit: { message: 'Promote', author: { name: 'P', email: 'p@example.com' } },
      }),
    );

    // Assess
    expect(error).toMatchObject({ code: 'GIT_AUTH_FAILED', retryable: false });
    expect(error.message).not.toContain(gitlab.token);
  });
});
