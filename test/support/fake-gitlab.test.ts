import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { runGit } from './bare-repositories.ts';
import { type FakeGitLab, mergeRequestHookPayload, startFakeGitLab } from './fake-gitlab.ts';

/**
 * The GitLab stand-in itself, through plain HTTP and the git CLI: what it answers is what the
 * GitLab adapter and the webhook receiver's tests rely on.
 */
const PATH = 'acme/platform/fleet';
const ENCODED = encodeURIComponent(PATH);
const READ_ONLY_TOKEN = 'glpat-readOnlyStandInToken000';
const HOOK_TOKEN = 'gitlab-hook-secret-token';

/** A webhook receiver on loopback that keeps what it was sent. */
const startReceiver = async () => {
  const received: { headers: IncomingHttpHeaders; body: string }[] = [];
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      received.push({ headers: request.headers, body: Buffer.concat(chunks).toString('utf8') });
      response.writeHead(202, { 'content-type': 'application/json' }).end('{"ok":true}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/webhooks/gitlab`,
    received,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
};

describe('the GitLab stand-in', () => {
  let gitlab: FakeGitLab;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let branches = 0;

  const api = (path: string, init: RequestInit & { token?: string } = {}) =>
    fetch(`${gitlab.apiBaseUrl}${path}`, {
      ...init,
      headers: {
        'content-type': 'application/json',
        ...(init.token === '' ? {} : { 'private-token': init.token ?? gitlab.token }),
        ...(init.headers as Record<string, string> | undefined),
      },
    });

  const openMergeRequest = async () => {
    branches += 1;
    const branch = `promotion-${branches}`;
    const sha = await gitlab.commitOnBranch(PATH, branch, { [`env${branches}.yaml`]: 'v: 1\n' });
    const response = await api(`/projects/${ENCODED}/merge_requests`, {
      method: 'POST',
      body: JSON.stringify({
        source_branch: branch,
        target_branch: 'main',
        title: `Promote ${branches}`,
      }),
    });
    const body = (await response.json()) as { iid: number };
    return { iid: body.iid, branch, sha, title: `Promote ${branches}`, status: response.status };
  };

  beforeAll(async () => {
    gitlab = await startFakeGitLab({ readOnlyTokens: [READ_ONLY_TOKEN] });
    await gitlab.createRepository(PATH, { 'README.md': 'fleet\n' });
    receiver = await startReceiver();
    gitlab.deliverWebhooksTo(receiver.url, HOOK_TOKEN, PATH);
  });

  afterAll(async () => {
    await gitlab?.close();
    await receiver?.close();
  });

  beforeEach(() => {
    gitlab.standIn.reset();
    receiver.received.length = 0;
  });

  it('serves a project by URL-encoded path and by id, with PRIVATE-TOKEN or a Bearer token', async () => {
    // Act
    const byPath = await api(`/projects/${ENCODED}`);
    const project = (await byPath.json()) as { id: number };
    const byId = await api(`/projects/${project.id}`, {
      token: '',
      headers: { authorization: `Bearer ${gitlab.token}` },
    });

    // Assess
    expect(byPath.status).toBe(200);
    expect(project).toMatchObject({
      path_with_namespace: PATH,
      path: 'fleet',
      default_branch: 'main',
      web_url: `${gitlab.url}/${PATH}`,
      http_url_to_repo: `${gitlab.url}/${PATH}.git`,
      namespace: { full_path: 'acme/platform' },
    });
    expect(await byId.json()).toEqual(project);
    expect(gitlab.requests.map((request) => request.auth)).toEqual(['private-token', 'bearer']);
  });

  it("answers GitLab's errors: 401 without a valid token, 403 insufficient_scope for a read_api write, 404s", async () => {
    // Act
    const unauthorized = await api(`/projects/${ENCODED}`, { token: 'glpat-wrong' });
    const readOnly = await api(`/projects/${ENCODED}/merge_requests`, {
      method: 'POST',
      token: READ_ONLY_TOKEN,
      body: JSON.stringify({ source_branch: 'x', target_branch: 'main', title: 't' }),
    });
    const noProject = await api(`/projects/${encodeURIComponent('acme/nope')}/merge_requests`);
    const noMergeRequest = await api(`/projects/${ENCODED}/merge_requests/99`);

    // Assess
    expect([unauthorized.status, await unauthorized.json()]).toEqual([
      401,
      { message: '401 Unauthorized' },
    ]);
    expect(readOnly.status).toBe(403);
    expect(await readOnly.json()).toMatchObject({ error: 'insufficient_scope', scope: 'api' });
    expect([noProject.status, await noProject.json()]).toEqual([
      404,
      { message: '404 Project Not Found' },
    ]);
    expect([noMergeRequest.status, await noMergeRequest.json()]).toEqual([
      404,
      { message: '404 Not found' },
    ]);
    expect(gitlab.mergeRequests(PATH)).toEqual([]);
  });

  it('creates merge requests in GitLab shapes, one open per source and target branch (409)', async () => {
    // Prepare
    const first = await openMergeRequest();

    // Act
    const again = await api(`/projects/${ENCODED}/merge_requests`, {
      method: 'POST',
      body: JSON.stringify({ source_branch: first.branch, target_branch: 'main', title: 'again' }),
    });
    const shown = await api(`/projects/${ENCODED}/merge_requests/${first.iid}`);
    const listed = await api(
      `/projects/${ENCODED}/merge_requests?state=opened&source_branch=${first.branch}&target_branch=main`,
    );

    // Assess
    expect(first.status).toBe(201);
    expect(again.status).toBe(409);
    expect(await again.json()).toEqual({
      message: [`Another open merge request already exists for this source branch: !${first.iid}`],
    });
    expect(await shown.json()).toMatchObject({
      iid: first.iid,
      project_id: expect.any(Number),
      state: 'opened',
      source_branch: first.branch,
      target_branch: 'main',
      sha: first.sha,
      merge_commit_sha: null,
      merged_at: null,
      merge_when_pipeline_succeeds: false,
      detailed_merge_status: 'mergeable',
      merge_status: 'can_be_merged',
      web_url: `${gitlab.url}/${PATH}/-/merge_requests/${first.iid}`,
      references: { full: `${PATH}!${first.iid}` },
      head_pipeline: null,
      diff_refs: { head_sha: first.sha, base_sha: await gitlab.branchHead(PATH, 'main') },
    });
    expect(listed.headers.get('x-total')).toBe('1');
    expect(((await listed.json()) as { iid: number }[]).map((mr) => mr.iid)).toEqual([first.iid]);
  });

  it('computes detailed_merge_status from the pipeline where one must succeed, and from conflicts', async () => {
    // Prepare
    const gated = 'acme/gated';
    await gitlab.createRepository(gated, { 'a.txt': 'base\n' }, 'main', {
      pipelineMustSucceed: true,
    });
    const sha = await gitlab.commitOnBranch(gated, 'feature', { 'a.txt': 'feature\n' });
    const created = await api(`/projects/${encodeURIComponent(gated)}/merge_requests`, {
      method: 'POST',
      body: JSON.stringify({ source_branch: 'feature', target_branch: 'main', title: 'Feature' }),
    });
    const { iid } = (await created.json()) as { iid: number };

    // Act
    const statuses: string[] = [await gitlab.standIn.detailedMergeStatus(gated, iid)];
    for (const pipeline of ['running', 'failed', 'success'] as const) {
      await gitlab.setPipeline(gated, iid, pipeline);
      statuses.push(await gitlab.standIn.detailedMergeStatus(gated, iid));
    }
    await gitlab.commitOnBranch(gated, 'main', { 'a.txt': 'main moved\n' });
    statuses.push(await gitlab.standIn.detailedMergeStatus(gated, iid));

    // Assess
    expect(sha).toMatch(/^[0-9a-f]{40}$/);
    expect(statuses).toEqual([
      'ci_must_pass',
      'ci_still_running',
      'ci_must_pass',
      'mergeable',
      'conflict',
    ]);
  });

  it('reports the head pipeline the controls set (null once deleted, kept when a push outdates it), mergeable while it runs unless pipelines must succeed', async () => {
    // Prepare
    const { iid, branch, sha } = await openMergeRequest();
    const show = async () =>
      (await (await api(`/projects/${ENCODED}/merge_requests/${iid}`)).json()) as {
        head_pipeline: { id: number; sha: string; status: string } | null;
        detailed_merge_status: string;
      };

    // Act
    await gitlab.setPipeline(PATH, iid, 'running');
    const running = await show();
    await gitlab.setPipeline(PATH, iid, 'none');
    const deleted = await show();
    await gitlab.setPipeline(PATH, iid, 'failed');
    const newHead = await gitlab.commitOnBranch(PATH, branch, { 'late.txt': 'pushed after\n' });
    const outdated = await show();

    // Assess
    expect(running).toMatchObject({
      head_pipeline: { id: expect.any(Number), sha, status: 'running' },
      detailed_merge_status: 'mergeable',
    });
    expect(deleted.head_pipeline).toBeNull();
    expect(outdated.head_pipeline).toMatchObject({ sha, status: 'failed' });
    expect(outdated.head_pipeline?.sha).not.toBe(newHead);
    expect(gitlab.standIn.pipelineOf(PATH, newHead)).toBe('none');
  });

  it('merges at once when asked to merge when pipeline succeeds without an active pipeline, as GitLab does', async () => {
    // Prepare
    const none = await openMergeRequest();
    const created = await openMergeRequest();
    await gitlab.setPipeline(PATH, created.iid, 'created');
    const running = await openMergeRequest();
    await gitlab.setPipeline(PATH, running.iid, 'running');
    const ask = (iid: number, sha: string) =>
      api(`/projects/${ENCODED}/merge_requests/${iid}/merge`, {
        method: 'PUT',
        body: JSON.stringify({ merge_when_pipeline_succeeds: true, sha }),
      });

    // Act
    const answers = await Promise.all(
      [none, created, running].map(async ({ iid, sha }) => {
        const response = await ask(iid, sha);
        return { status: response.status, body: (await response.json()) as { state: string } };
      }),
    );

    // Assess
    expect(answers.map(({ status, body }) => [status, body.state])).toEqual([
      [200, 'merged'],
      [200, 'merged'],
      [200, 'opened'],
    ]);
    expect(gitlab.mergeRequest(PATH, running.iid)).toMatchObject({
      mergeWhenPipelineSucceeds: true,
      autoMergeSha: running.sha,
    });
  });

  it('runs a pipeline for each push to a branch of a project with CI', async () => {
    // Prepare
    const project = 'acme/with-ci';
    await gitlab.createRepository(project, { 'a.txt': 'base\n' }, 'main', { ci: true });
    const first = await gitlab.commitOnBranch(project, 'feature', { 'a.txt': 'one\n' });
    const created = await api(`/projects/${encodeURIComponent(project)}/merge_requests`, {
      method: 'POST',
      body: JSON.stringify({ source_branch: 'feature', target_branch: 'main', title: 'Feature' }),
    });
    const { iid } = (await created.json()) as { iid: number };
    const show = async () =>
      (
        (await (
          await api(`/projects/${encodeURIComponent(project)}/merge_requests/${iid}`)
        ).json()) as { head_pipeline: { id: number; sha: string; status: string } | null }
      ).head_pipeline;

    // Act
    const before = await show();
    const second = await gitlab.commitOnBranch(project, 'feature', { 'a.txt': 'two\n' });
    const after = await show();

    // Assess
    expect(before).toMatchObject({ sha: first, status: 'running' });
    expect(after).toMatchObject({ sha: second, status: 'running' });
    expect(after?.id).not.toBe(before?.id);
    expect(
      gitlab.standIn.pipelineOf(project, (await gitlab.branchHead(project, 'main')) ?? ''),
    ).toBe('none');
  });

  it('cancels merge when pipeline succeeds when the head moves, and merges nothing on success', async () => {
    // Prepare
    const { iid, branch, sha } = await openMergeRequest();
    await gitlab.setPipeline(PATH, iid, 'running');
    const set = await api(`/projects/${ENCODED}/merge_requests/${iid}/merge`, {
      method: 'PUT',
      body: JSON.stringify({ merge_when_pipeline_succeeds: true, sha }),
    });
    const main = await gitlab.branchHead(PATH, 'main');

    // Act
    await gitlab.commitOnBranch(PATH, branch, { 'late.txt': 'pushed after\n' });
    await gitlab.setPipeline(PATH, iid, 'success');

    // Assess
    expect(set.status).toBe(200);
    expect(await gitlab.branchHead(PATH, 'main')).toBe(main);
    expect(gitlab.mergeRequest(PATH, iid)).toMatchObject({
      state: 'opened',
      mergeWhenPipelineSucceeds: false,
    });
    expect(gitlab.notes(PATH, iid).map((note) => note.body)).toEqual([
      'aborted the automatic merge because the source branch was updated',
    ]);
  });

  it('sends a Merge Request Hook with X-Gitlab-Token when a merge request is merged or closed', async () => {
    // Prepare
    const merged = await openMergeRequest();
    const closed = await openMergeRequest();

    // Act
    const merge = await api(`/projects/${ENCODED}/merge_requests/${merged.iid}/merge`, {
      method: 'PUT',
      body: JSON.stringify({ sha: merged.sha }),
    });
    await api(`/projects/${ENCODED}/merge_requests/${closed.iid}`, {
      method: 'PUT',
      body: JSON.stringify({ state_event: 'close' }),
    });
    await gitlab.webhooksSettled();

    // Assess
    expect(merge.status).toBe(200);
    const mergeCommit = gitlab.mergeRequest(PATH, merged.iid)?.mergeCommitSha;
    expect(mergeCommit).toBe(await gitlab.branchHead(PATH, 'main'));
    expect(receiver.received).toHaveLength(2);
    const [mergeHook, closeHook] = receiver.received;
    expect(mergeHook?.headers).toMatchObject({
      'x-gitlab-event': 'Merge Request Hook',
      'x-gitlab-token': HOOK_TOKEN,
      'x-gitlab-event-uuid': expect.stringMatching(/^[0-9a-f-]{36}$/),
      'content-type': 'application/json',
    });
    expect(JSON.parse(mergeHook?.body ?? '{}')).toMatchObject({
      object_kind: 'merge_request',
      event_type: 'merge_request',
      project: { path_with_namespace: PATH, web_url: `${gitlab.url}/${PATH}` },
      object_attributes: {
        iid: merged.iid,
        action: 'merge',
        state: 'merged',
        source_branch: merged.branch,
        target_branch: 'main',
        title: merged.title,
        merge_commit_sha: mergeCommit,
        url: `${gitlab.url}/${PATH}/-/merge_requests/${merged.iid}`,
        last_commit: { id: merged.sha },
      },
    });
    expect(JSON.parse(closeHook?.body ?? '{}')).toMatchObject({
      object_attributes: {
        iid: closed.iid,
        action: 'close',
        state: 'closed',
        merge_commit_sha: null,
      },
    });
    expect(gitlab.webhookDeliveries.map((delivery) => delivery.status)).toEqual([202, 202]);
  });

  it('builds the hook payload of its own deliveries with the exported builder', () => {
    // Act
    const payload = mergeRequestHookPayload({
      action: 'close',
      instanceUrl: 'https://gitlab.example.com',
      project: { id: 7, pathWithNamespace: 'acme/fleet', defaultBranch: 'main' },
      mergeRequest: {
        id: 70,
        iid: 3,
        state: 'closed',
        sourceBranch: 'promotion-a-b-prod',
        targetBranch: 'main',
        title: 'Promote a/b in prod to 1.2.3',
        description: 'a/b/prod',
        mergeCommitSha: null,
        lastCommitId: 'a'.repeat(40),
        createdAt: '2026-12-01T10:00:00.000Z',
        updatedAt: '2026-12-01T11:00:00.000Z',
      },
    });

    // Assess
    expect(payload).toMatchObject({
      object_kind: 'merge_request',
      project: {
        path_with_namespace: 'acme/fleet',
        web_url: 'https://gitlab.example.com/acme/fleet',
      },
      object_attributes: {
        action: 'close',
        state: 'closed',
        url: 'https://gitlab.example.com/acme/fleet/-/merge_requests/3',
        last_commit: { id: 'a'.repeat(40) },
        updated_at: '2026-12-01 11:00:00 UTC',
      },
    });
  });

  it('serves git to oauth2:{token}, refuses other usernames, and refuses pushes with a read_api token', async () => {
    // Prepare
    const bare = gitlab.repositoryPath(PATH);
    const remote = (username: string, token: string) =>
      `${gitlab.url.replace('http://', `http://${username}:${token}@`)}/${PATH}.git`;
    const env = { GIT_TERMINAL_PROMPT: '0' };

    // Act
    const listed = await runGit(
      bare,
      ['-c', 'credential.helper=', 'ls-remote', remote('oauth2', gitlab.token)],
      undefined,
      env,
    );
    const wrongUser = await runGit(
      bare,
      ['-c', 'credential.helper=', 'ls-remote', remote('someone', gitlab.token)],
      undefined,
      env,
    );
    const readOnlyPush = await runGit(
      bare,
      [
        '-c',
        'credential.helper=',
        'push',
        remote('oauth2', READ_ONLY_TOKEN),
        'main:refs/heads/read-only-push',
      ],
      undefined,
      env,
    );

    // Assess
    expect(listed.code).toBe(0);
    expect(listed.stdout.toString('utf8')).toContain(
      `${await gitlab.branchHead(PATH, 'main')}\trefs/heads/main`,
    );
    expect(wrongUser.code).not.toBe(0);
    expect(readOnlyPush.code).not.toBe(0);
    expect(readOnlyPush.stderr).toMatch(/403/);
    expect(await gitlab.branchHead(PATH, 'read-only-push')).toBeUndefined();
  });
});
