import { describe, expect, it } from 'vitest';
import { parsePipelineManifests } from '../../functions/core/pipeline-manifest.ts';
import { stateChangeNotice } from '../../functions/core/promotion-notices.ts';
import { signBody } from '../../functions/core/signature.ts';
import { handleWebhookRequest } from '../../functions/core/webhook.ts';
import { FIXTURE_HMAC_KEY, freshEvent, readFixture } from '../support/fixtures.ts';
import { webhookHarness } from '../support/webhook-harness.ts';

/**
 * Weave's approval route (DESIGN.md section 5), through the webhook request function that the
 * Lambda handler and serve share: the HMAC of the raw body (empty allowed) with the pipeline's
 * shared key, then the promotion waiting at that revision is approved.
 */
const manualProd = () => {
  const manifest = readFixture('pipelines/podinfo.yaml').replace(
    '      promotion:\n        strategy:',
    '      promotion:\n        manual: true\n        strategy:',
  );
  const pipelines = parsePipelineManifests(manifest).pipelines;
  const harness = webhookHarness({ pipelines });
  const at = new Date();
  harness.now = at;
  const staging = async (namespace: string) => {
    const body = freshEvent('helmrelease-upgrade-succeeded.json', at).replace(
      '"namespace":"podinfo-dev"',
      `"namespace":"${namespace}"`,
    );
    return handleWebhookRequest(
      {
        method: 'POST',
        path: '/promotion/flux-system/podinfo/staging',
        headers: { 'x-signature': signBody(body, FIXTURE_HMAC_KEY) },
        body: Buffer.from(body),
      },
      harness.deps,
    );
  };
  const approve = (path: string, signature: string | undefined, body = '', method = 'POST') =>
    handleWebhookRequest(
      {
        method,
        path,
        headers: signature === undefined ? {} : { 'x-signature': signature },
        body: Buffer.from(body),
      },
      harness.deps,
    );
  return { harness, staging, approve };
};

const PATH = '/approval/flux-system/podinfo/prod/6.5.0';

describe('POST /approval/{ns}/{name}/{env}/{revision}', () => {
  it('approves the promotion waiting at the revision, signed over the empty body, and enqueues it', async () => {
    // Prepare
    const { harness, staging, approve } = manualProd();
    await staging('podinfo-qa');
    const waiting = await staging('podinfo-perf');

    // Act
    const approved = await approve(PATH, signBody('', FIXTURE_HMAC_KEY));

    // Assess
    expect(waiting.body).toMatchObject({ promoted: false, waiting: { approval: {} } });
    expect(approved.status).toBe(202);
    expect(approved.outcome).toBe('approved');
    expect(approved.body).toMatchObject({
      approved: { pipeline: 'flux-system/podinfo', environment: 'prod', revision: '6.5.0' },
      promoted: true,
    });
    expect(harness.jobs.map((job) => [job.to, job.revision])).toEqual([['prod', '6.5.0']]);
    expect(
      await harness.state.getPromotion({ namespace: 'flux-system', name: 'podinfo' }, 'prod'),
    ).toMatchObject({ state: 'queued', approvedBy: 'hmac' });
  });

  it.each([
    ['no signature', undefined, 401, /^signature missing/],
    ['a signature with another key', signBody('', 'another-key'), 401, /^signature mismatch/],
  ])('refuses %s with 401 and approves nothing', async (_name, signature, status, error) => {
    // Prepare
    const { harness, staging, approve } = manualProd();
    await staging('podinfo-qa');
    await staging('podinfo-perf');

    // Act
    const answer = await approve(PATH, signature);

    // Assess
    expect(answer.status).toBe(status);
    expect(String(answer.body.error)).toMatch(error);
    expect(harness.jobs).toEqual([]);
  });

  it('refuses a captured notice or Flux event, signed with the same key, as an approval', async () => {
    // Prepare: the awaiting-approval notice serve POSTs is signed with this pipeline's key.
    const { harness, staging, approve } = manualProd();
    await staging('podinfo-qa');
    await staging('podinfo-perf');
    const record = await harness.state.getPromotion(
      { namespace: 'flux-system', name: 'podinfo' },
      'prod',
    );
    const pipeline = await harness.deps.pipelines.get({
      namespace: 'flux-system',
      name: 'podinfo',
    });
    if (record === undefined || pipeline === undefined) throw new Error('nothing waits');
    const notice = JSON.stringify(stateChangeNotice(pipeline, record, new Date()).body);
    const event = freshEvent('helmrelease-upgrade-succeeded.json');

    // Act
    const replayedNotice = await approve(PATH, signBody(notice, FIXTURE_HMAC_KEY), notice);
    const replayedEvent = await approve(PATH, signBody(event, FIXTURE_HMAC_KEY), event);

    // Assess
    for (const answer of [replayedNotice, replayedEvent]) {
      expect(answer.status).toBe(400);
      expect(String(answer.body.error)).toMatch(/is not an approval: sign an empty body/);
    }
    expect(harness.jobs).toEqual([]);
    expect(
      await harness.state.getPromotion({ namespace: 'flux-system', name: 'podinfo' }, 'prod'),
    ).toMatchObject({ state: 'awaiting-approval' });
  });

  it('answers 422 for a revision that does not wait, and for an environment nothing promotes into', async () => {
    // Prepare
    const { staging, approve } = manualProd();
    await staging('podinfo-qa');
    await staging('podinfo-perf');

    // Act
    const stale = await approve(
      '/approval/flux-system/podinfo/prod/6.4.0',
      signBody('', FIXTURE_HMAC_KEY),
    );
    const first = await approve(
      '/approval/flux-system/podinfo/dev/6.5.0',
      signBody('', FIXTURE_HMAC_KEY),
    );

    // Assess
    expect(stale.status).toBe(422);
    expect(stale.body.error).toBe(
      'the promotion of flux-system/podinfo into prod waits for approval at 6.5.0, not 6.4.0: a newer revision replaced it',
    );
    expect(first.status).toBe(422);
    expect(first.body.error).toBe(
      'environment "dev" of pipeline flux-system/podinfo takes no approvals (promotions go into: staging, prod)',
    );
  });

  it('answers 404 for an unknown pipeline and 405 for another method', async () => {
    // Prepare
    const { approve } = manualProd();

    // Act
    const unknown = await approve(
      '/approval/flux-system/nope/prod/6.5.0',
      signBody('', FIXTURE_HMAC_KEY),
    );
    const get = await approve(PATH, signBody('', FIXTURE_HMAC_KEY), '', 'GET');

    // Assess
    expect([unknown.status, unknown.body.error]).toEqual([
      404,
      'pipeline flux-system/nope not found',
    ]);
    expect([get.status, get.headers]).toEqual([405, { allow: 'POST' }]);
  });
});
