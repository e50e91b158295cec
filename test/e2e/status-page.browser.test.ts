import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signBody } from '../../functions/core/signature.ts';
import {
  type FakeGitHubEnterprise,
  startFakeGitHubEnterprise,
} from '../support/fake-github-enterprise.ts';
import { FIXTURE_HMAC_KEY, freshEvent, readFixture } from '../support/fixtures.ts';
import { type SignedApiStandIn, startSignedApiStandIn } from '../support/signed-api-stand-in.ts';
import {
  cellLink,
  cellText,
  launchChromium,
  type PromoterProcess,
  startPromoter,
  startUi,
  waitForCell,
} from '../support/status-page-browser.ts';

/**
 * The status page of `promoter serve` in a real browser (Debian's chromium, headless, driven by
 * playwright-core): serve started as a user starts it (the CLI, files on disk, loopback), real
 * signed Flux events, the worker promoting on git http-backend and the GitHub stand-in, whose
 * signed `pull_request` webhooks reach serve. The page is opened once and never reloaded: each
 * step checks that it changed by itself (a marker set in the page's window survives only
 * without a reload).
 *
 * The steps tell one story in order: an empty page → dev deployed, the staging PR on the page →
 * merged by a person → staging deployed → prod, which is `manual: true`, waits for an approval
 * that is clicked on the page (issue 11's approval route) → the prod PR on the page.
 */
const OWNER = 'example-org';
const PIPELINE = 'flux-system/podinfo';
const WEBHOOK_SECRET = 'the-github-webhook-secret-of-the-page-test';
const STAGING_FILE = 'clusters/staging/podinfo/release.yaml';
const PROD_FILE = 'clusters/prod/podinfo/release.yaml';

const release = (namespace: string, environment: string, version: string): string =>
  [
    'apiVersion: helm.toolkit.fluxcd.io/v2',
    'kind: HelmRelease',
    'metadata:',
    '  name: podinfo',
    `  namespace: ${namespace}`,
    'spec:',
    '  chart:',
    '    spec:',
    '      chart: podinfo',
    `      version: ${version} # {"$promotion": "flux-system:podinfo:${environment}"}`,
    '',
  ].join('\n');

/** The fixture pipeline, on the stand-in, with promotions into prod waiting for an approval. */
const pipelineManifest = (githubUrl: string): string => {
  const manifest = readFixture('pipelines/podinfo.yaml').replaceAll(
    'https://github.com/',
    `${githubUrl}/`,
  );
  const prodPromotion = '      promotion:\n        strategy:\n          pull-request:';
  if (!manifest.includes(prodPromotion)) throw new Error('the fixture changed: no prod promotion');
  return manifest.replace(
    prodPromotion,
    '      promotion:\n        manual: true\n        strategy:\n          pull-request:',
  );
};

let github: FakeGitHubEnterprise;
let serve: PromoterProcess;
let url: string;
let browser: Browser;
let page: Page;

beforeAll(async () => {
  github = await startFakeGitHubEnterprise();
  await github.createRepository(OWNER, 'fleet', {
    [STAGING_FILE]: release('podinfo-qa', 'staging', '6.4.0'),
  });
  await github.createRepository(OWNER, 'fleet-prod', {
    [PROD_FILE]: release('podinfo-prod', 'prod', '6.4.0'),
  });
  const folder = await mkdtemp(join(tmpdir(), 'status-page-'));
  await writeFile(join(folder, 'pipelines.yaml'), pipelineManifest(github.url));
  await writeFile(
    join(folder, 'secrets.json'),
    JSON.stringify({
      'flux-system/promotion-credentials': { 'hmac-key': FIXTURE_HMAC_KEY, token: github.token },
      'flux-system/prod-promotion-credentials': { token: github.token },
      'github-webhook': { secret: WEBHOOK_SECRET },
    }),
  );
  serve = startPromoter([
    'serve',
    '--port',
    '0',
    '--pipelines',
    join(folder, 'pipelines.yaml'),
    '--secrets',
    join(folder, 'secrets.json'),
    '--git-cache',
    join(folder, 'git-cache'),
    '--data',
    join(folder, 'data'),
    '--reconcile-interval',
    '0',
  ]);
  url = await serve.waitForLine('serve to listen', (line) =>
    line.message === 'promoter serve listening' ? String(line.url) : undefined,
  );
  await github.standIn.deliverWebhooksTo(`${url}/webhooks/github`, WEBHOOK_SECRET);
  browser = await launchChromium();
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
});

afterAll(async () => {
  await browser?.close();
  await github?.standIn.deliveries.settled();
  await serve?.stop();
  await github?.close();
});

/** Event times: whole seconds (as Flux writes them), each one later than the one before. */
let lastEventAt = 0;
const eventTime = (agoMs = 0): Date => {
  const at = Math.max(Math.floor((Date.now() - agoMs) / 1000) * 1000, lastEventAt + 1000);
  lastEventAt = at;
  return new Date(at);
};

/** The fixture's UpgradeSucceeded from a target's namespace, signed as Flux signs it. */
const fluxEvent = async (environment: string, namespace: string, revision: string) => {
  const body = freshEvent('helmrelease-upgrade-succeeded.json', eventTime())
    .replace('"namespace":"podinfo-dev"', `"namespace":"${namespace}"`)
    .replaceAll('6.5.0', revision);
  const response = await fetch(`${url}/promotion/flux-system/podinfo/${environment}`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'x-signature': signBody(body, FIXTURE_HMAC_KEY),
    },
    body,
  });
  return response.status;
};

const openPulls = (repo: string) =>
  github.standIn.pullRequests(OWNER, repo).filter((pull) => pull.state === 'open');

const at = (row: string, environment: string) => ({ pipeline: PIPELINE, row, environment });

/** True while the page has not been reloaded since `markPage`. */
const stillTheSamePage = () =>
  page.evaluate('window.__statusPageMarker === "set before the change"');
const markPage = () => page.evaluate('window.__statusPageMarker = "set before the change"');

describe('the status page of promoter serve, in chromium', () => {
  it('shows every environment as a column of a table, in order, before anything happened', async () => {
    // Prepare: serve is up.

    // Act
    const response = await page.goto(`${url}/`);
    const headers = await page.$$eval('section.pipeline thead th[scope="col"]', (cells) =>
      cells.map((cell) => cell.textContent),
    );
    const rows = await page.$$eval('section.pipeline tbody th[scope="row"]', (cells) =>
      cells.map((cell) => cell.textContent),
    );

    // Assess
    expect(response?.status()).toBe(200);
    expect(response?.headers()['content-security-policy']).toMatch(/script-src 'self'/);
    expect(await page.title()).toMatch(/Pipeline Promoter/);
    expect(await page.textContent('section.pipeline h2')).toMatch(/^flux-system\/podinfo/);
    expect(headers).toEqual(['dev', 'staging', 'prod']);
    expect(rows).toEqual(
      expect.arrayContaining(['Runs', 'Promotion', 'Waiting for', 'Pull request', 'Timeline']),
    );
    expect(await cellText(page, at('Runs', 'dev'))).toMatch(/nothing seen yet$/);
    expect(await page.getAttribute('#live', 'aria-live')).toBe('polite');
  });

  it('a dev deployment: the staging promotion and its PR link appear without a reload', async () => {
    // Prepare
    await markPage();

    // Act
    const status = await fluxEvent('dev', 'podinfo-dev', '6.5.0');
    const promotion = await waitForCell(page, at('Promotion', 'staging'), /opened 6\.5\.0/);
    const [pull] = openPulls('fleet');
    if (pull === undefined) throw new Error('no staging pull request');
    await waitForCell(page, at('Pull request', 'staging'), new RegExp(`#${pull.number} open`));

    // Assess
    expect(status).toBe(202);
    expect(promotion).toMatch(/from dev/);
    expect(await cellLink(page, at('Pull request', 'staging'))).toBe(
      `${github.url}/${OWNER}/fleet/pull/${pull.number}`,
    );
    expect(await cellText(page, at('Runs', 'dev'))).toMatch(/6\.5\.0/);
    expect(await cellText(page, at('Timeline', 'staging'))).toMatch(/source deployed/);
    expect(await page.textContent('#live')).toMatch(/flux-system\/podinfo staging/);
    expect(await stillTheSamePage()).toBe(true);
  });

  it('merged by a person: the merged state (webhook) appears without a reload, then deployed with its lead time', async () => {
    // Prepare
    const [pull] = openPulls('fleet');
    if (pull === undefined) throw new Error('no staging pull request');
    await markPage();

    // Act
    await github.standIn.mergePullRequest(OWNER, 'fleet', pull.number);
    const merged = await waitForCell(page, at('Promotion', 'staging'), /^merged 6\.5\.0/);
    const pullCell = await waitForCell(page, at('Pull request', 'staging'), /merged/);
    for (const namespace of ['podinfo-qa', 'podinfo-perf']) {
      expect(await fluxEvent('staging', namespace, '6.5.0')).toBe(202);
    }
    const deployed = await waitForCell(page, at('Promotion', 'staging'), /^deployed 6\.5\.0/);

    // Assess
    expect(merged).toMatch(/from dev/);
    expect(pullCell).toMatch(new RegExp(`#${pull.number} merged`));
    expect(deployed).toMatch(/from dev/);
    expect(await cellText(page, at('Lead time', 'staging'))).toMatch(/^\d+(m )?\d*s$|^\d+m \d+s$/);
    expect(await cellText(page, at('Timeline', 'staging'))).toMatch(/merged .* deployed/);
    expect(await stillTheSamePage()).toBe(true);
  });

  it('the keyboard reaches the controls, and keeps its place when the page refreshes', async () => {
    // Prepare
    await page.focus('body');

    // Act: Tab until a control of the page has focus.
    let reached: string | null = null;
    for (let press = 0; press < 40 && reached === null; press += 1) {
      await page.keyboard.press('Tab');
      reached = await page.evaluate(
        'document.activeElement && document.activeElement.matches("button[data-action]") ? document.activeElement.textContent : null',
      );
    }
    const focusKey = await page.evaluate('document.activeElement.dataset.focusKey');
    // A refresh that changes the page (a newer dev revision) must not drop the focus.
    await markPage();
    expect(await fluxEvent('dev', 'podinfo-dev', '6.5.1')).toBe(202);
    await waitForCell(page, at('Runs', 'dev'), /6\.5\.1/);
    const stillFocused = await page.evaluate('document.activeElement.dataset.focusKey');
    // Enter opens the freeze dialog with the focus in it; Escape closes it, focus goes back.
    await page.evaluate('document.querySelector(\'button[data-action="freeze"]\').focus()');
    await page.keyboard.press('Enter');
    const inDialog = await page.evaluate('document.activeElement && document.activeElement.id');
    const dialogOpen = await page.evaluate('document.getElementById("freeze-dialog").open');
    await page.keyboard.press('Escape');
    const afterEscape = await page.evaluate(
      'document.activeElement && document.activeElement.dataset.action',
    );

    // Assess
    expect(reached).toMatch(/^(Freeze|Approve|Unfreeze) /);
    expect(stillFocused).toBe(focusKey);
    expect(dialogOpen).toBe(true);
    expect(inDialog).toBe('freeze-reason');
    expect(afterEscape).toBe('freeze');
    expect(await stillTheSamePage()).toBe(true);
  });

  // Needs issue 11: `manual: true` holding prod in awaiting-approval, and
  // POST /pipelines/{ns}/{name}/environments/{env}/approval (202). Until both are in, this fails
  // at the first wait (no Approve button) or at the click's answer.
  it('[issue 11 approval route] prod is manual: an Approve clicked on the page reaches serve and the prod PR appears', async () => {
    // Prepare: staging deployed 6.5.0 in the step before; prod waits for an approval.
    await waitForCell(page, at('Promotion', 'prod'), /^awaiting-approval 6\.5\.0/);
    const approve = page.getByRole('button', { name: 'Approve 6.5.0 into prod' });
    await markPage();

    // Act
    await approve.click();
    await page
      .locator('#action-result', { hasText: /^(Approved|Refused)/ })
      .waitFor({ timeout: 20_000 });
    const answer = await page.textContent('#action-result');
    if (!answer?.startsWith('Approved'))
      throw new Error(`serve did not take the approval: ${answer}`);
    const opened = await waitForCell(page, at('Promotion', 'prod'), /^opened 6\.5\.0/);
    const [pull] = openPulls('fleet-prod');

    // Assess
    expect(answer).toBe(`Approved 6.5.0 into prod of ${PIPELINE}`);
    expect(opened).toMatch(/from staging/);
    expect(pull?.title).toBe('Promote flux-system/podinfo in prod to 6.5.0');
    expect(await cellLink(page, at('Pull request', 'prod'))).toBe(
      `${github.url}/${OWNER}/fleet-prod/pull/${pull?.number}`,
    );
    expect(await cellText(page, at('Waiting for', 'prod'))).toMatch(/approved/);
    expect(await stillTheSamePage()).toBe(true);
  });

  // Needs issue 11's POST /freeze, POST /unfreeze and GET /freezes in serve.
  it('[issue 11 freeze routes] prod frozen from the dialog with a reason, shown with its reason, then unfrozen', async () => {
    // Prepare
    await markPage();

    // Act: the dialog, by keyboard as far as the form goes.
    await page.getByRole('button', { name: 'Freeze prod…' }).click();
    await page.getByLabel('Reason').fill('release week');
    await page.keyboard.press('Enter');
    await page
      .locator('#action-result', { hasText: /^(Frozen|Refused)/ })
      .waitFor({ timeout: 20_000 });
    const frozeAnswer = await page.textContent('#action-result');
    if (!frozeAnswer?.startsWith('Frozen')) throw new Error(`serve did not freeze: ${frozeAnswer}`);
    const unfreeze = page.getByRole('button', { name: 'Unfreeze prod', exact: true });
    await unfreeze.waitFor({ timeout: 20_000 });
    const listed = await page.textContent('section.freezes');
    await unfreeze.click();
    await page
      .locator('#action-result', { hasText: /^(Unfrozen|Refused)/ })
      .waitFor({ timeout: 20_000 });
    const unfrozeAnswer = await page.textContent('#action-result');
    await page.locator('section.freezes', { hasText: 'No freezes' }).waitFor({ timeout: 20_000 });

    // Assess
    expect(frozeAnswer).toBe(`Frozen: prod of ${PIPELINE}`);
    expect(listed).toMatch(/prod of flux-system\/podinfo: release week/);
    expect(unfrozeAnswer).toBe(`Unfrozen: prod`);
    expect(await stillTheSamePage()).toBe(true);
  });

  it("refuses a browser's POST from another site before it reaches the pipelines API", async () => {
    // Prepare
    const approval = `${url}/pipelines/flux-system/podinfo/environments/prod/approval`;

    // Act
    const crossOrigin = await fetch(approval, {
      method: 'POST',
      headers: { 'content-type': 'text/plain', origin: 'https://evil.example' },
      body: '{}',
    });
    const crossSite = await fetch(`${url}/freeze`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain', 'sec-fetch-site': 'cross-site' },
      body: JSON.stringify({ reason: 'not from the page' }),
    });

    // Assess
    expect(crossOrigin.status).toBe(403);
    expect(((await crossOrigin.json()) as { error: string }).error).toMatch(/another origin/);
    expect(crossSite.status).toBe(403);
    expect(((await crossSite.json()) as { error: string }).error).toMatch(/cross-site/);
  });

  it('reads on a phone: the table scrolls inside its own region, the page does not', async () => {
    // Prepare
    const phone = await browser.newPage({ viewport: { width: 375, height: 740 } });

    // Act
    await phone.goto(`${url}/`);
    const pageWidth = await phone.evaluate('document.documentElement.scrollWidth');
    const region = await phone.evaluate(
      '(() => { const r = document.querySelector(".scroll"); return { role: r.getAttribute("role"), tabindex: r.getAttribute("tabindex"), label: r.getAttribute("aria-labelledby") }; })()',
    );
    await phone.close();

    // Assess
    expect(pageWidth).toBeLessThanOrEqual(375);
    expect(region).toMatchObject({ role: 'region', tabindex: '0' });
  });
});

/**
 * The same page through `promoter ui` (the CLI, static credentials in its environment) in front
 * of a stand-in for the AWS API that checks each request's SigV4 signature: the buttons'
 * requests go through the signing proxy.
 */
describe('the status page of promoter ui, in chromium', () => {
  const REGION = 'eu-west-1';
  let api: SignedApiStandIn;
  let ui: { process: PromoterProcess; url: string };
  let uiPage: Page;

  beforeAll(async () => {
    api = await startSignedApiStandIn(REGION);
    ui = await startUi(api.url, REGION);
    uiPage = await browser.newPage({ viewport: { width: 1024, height: 800 } });
    await uiPage.goto(`${ui.url}/`);
  });

  afterAll(async () => {
    await uiPage?.close();
    await ui?.process.stop();
    await api?.close();
  });

  it('Approve: the signed approval reaches the API, and the page shows who approved', async () => {
    // Prepare
    await uiPage.evaluate('window.__statusPageMarker = "set before the change"');
    api.received.length = 0;

    // Act
    await uiPage.getByRole('button', { name: 'Approve 6.5.0 into prod' }).click();
    await uiPage.locator('#action-result', { hasText: /^(Approved|Refused)/ }).waitFor();
    const answer = await uiPage.textContent('#action-result');
    const promotion = await waitForCell(uiPage, at('Promotion', 'prod'), /^queued 6\.5\.0/);

    // Assess
    expect(answer).toBe(`Approved 6.5.0 into prod of ${PIPELINE}`);
    expect(promotion).toMatch(/from dev/);
    expect(await cellText(uiPage, at('Waiting for', 'prod'))).toMatch(
      /^approved .* by arn:aws:iam::111122223333:user\/ui-test$/,
    );
    const approval = api.received.find((request) => request.method === 'POST');
    expect(approval).toMatchObject({
      path: '/prod/pipelines/flux-system/podinfo/environments/prod/approval',
      body: JSON.stringify({ revision: '6.5.0' }),
      verified: true,
    });
    expect(api.received.every((request) => request.verified)).toBe(true);
    expect(await uiPage.evaluate('window.__statusPageMarker === "set before the change"')).toBe(
      true,
    );
  });

  it('Freeze… with a reason from the dialog, listed with it, then Unfreeze: each a signed request', async () => {
    // Prepare
    api.received.length = 0;

    // Act
    await uiPage.getByRole('button', { name: 'Freeze prod…' }).click();
    await uiPage.getByLabel('Reason').fill('release week');
    await uiPage.keyboard.press('Enter');
    await uiPage.locator('#action-result', { hasText: /^(Frozen|Refused)/ }).waitFor();
    const frozen = await uiPage.textContent('#action-result');
    const unfreeze = uiPage.getByRole('button', { name: 'Unfreeze prod', exact: true });
    await unfreeze.waitFor();
    const listed = await uiPage.textContent('section.freezes');
    const waiting = await cellText(uiPage, at('Actions', 'prod'));
    await unfreeze.click();
    await uiPage.locator('#action-result', { hasText: /^(Unfrozen|Refused)/ }).waitFor();
    const unfrozen = await uiPage.textContent('#action-result');
    await uiPage.locator('section.freezes', { hasText: 'No freezes' }).waitFor();

    // Assess
    expect(frozen).toBe(`Frozen: prod of ${PIPELINE}`);
    expect(listed).toMatch(
      /prod of flux-system\/podinfo: release week by arn:aws:iam::111122223333:user\/ui-test/,
    );
    expect(waiting).toMatch(/Unfreeze prod/);
    expect(unfrozen).toBe('Unfrozen: prod');
    const posts = api.received.filter((request) => request.method === 'POST');
    expect(
      posts.map(({ path, body, verified }) => ({ path, body: JSON.parse(body), verified })),
    ).toEqual([
      {
        path: '/prod/freeze',
        body: { pipeline: PIPELINE, environment: 'prod', reason: 'release week' },
        verified: true,
      },
      { path: '/prod/unfreeze', body: { pipeline: PIPELINE, environment: 'prod' }, verified: true },
    ]);
  });
});
