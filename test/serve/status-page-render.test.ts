import { describe, expect, it } from 'vitest';
import {
  renderStatusView,
  waitingForHtml,
} from '../../functions/serve/status-page/render-status.ts';
import {
  answerStatusPage,
  readStatusViewData,
  type StatusPageSource,
} from '../../functions/serve/status-page/status-page.ts';
import { readPipelineViews } from '../../functions/serve/status-page/status-view.ts';

/** The page's rendering of what the pipelines API answers: new, old, odd and hostile shapes. */
const source = (pipelines: unknown, freezes?: unknown): StatusPageSource => ({
  read: async (path) =>
    path === '/pipelines'
      ? { status: 200, body: { pipelines } }
      : freezes === undefined
        ? { status: 404, body: { error: 'not found' } }
        : { status: 200, body: { freezes } },
});

const view = async (pipelines: unknown, freezes?: unknown, controls = false) =>
  renderStatusView(await readStatusViewData(source(pipelines, freezes)), { controls });

describe('the status view', () => {
  it('renders an older status (deployed, no targets, no gates) and a newer one (targets, waitingFor, approval)', async () => {
    // Prepare
    const older = {
      pipeline: 'a/old',
      app: { kind: 'HelmRelease', name: 'old' },
      environments: [
        {
          name: 'dev',
          deployed: { revision: '1.0.0', eventTimestamp: '2026-11-20T16:00:00Z' },
          promotion: null,
        },
        {
          name: 'prod',
          deployed: null,
          promotion: {
            state: 'failed',
            revision: '1.0.0',
            from: 'dev',
            pullRequest: null,
            timeline: {},
            leadTimeMs: null,
            failure: { code: 'GITHUB_FORBIDDEN', message: 'the token cannot push' },
          },
        },
      ],
    };
    const newer = {
      pipeline: 'b/new',
      environments: [
        {
          name: 'dev',
          targets: [{ name: 'eu', cluster: 'eu', namespace: 'app', revision: '2.0.0', ok: true }],
        },
        {
          name: 'prod',
          targets: [{ name: 'us', namespace: 'app' }],
          promotion: {
            state: 'waiting',
            revision: '2.0.0',
            waitingFor: { targets: { ready: 1, needed: 2 }, lunar: { phase: 'full' } },
          },
        },
      ],
    };

    // Act
    const html = await view([older, newer]);

    // Assess
    expect(html).toContain('<th scope="col">dev</th><th scope="col">prod</th>');
    expect(html).toContain('<code>1.0.0</code>');
    expect(html).toContain('<code>GITHUB_FORBIDDEN</code> the token cannot push');
    expect(html).toContain('1 of 2 source targets ready');
    expect(html).toContain('lunar: <code>{&quot;phase&quot;:&quot;full&quot;}</code>');
    expect(html).toContain('eu</span> <span class="where">eu/app</span>: <code>2.0.0</code>');
    expect(html).not.toContain('Approve');
  });

  it('escapes what came from the API and links only http(s) pull requests', async () => {
    // Prepare
    const hostile = {
      pipeline: '<script>alert(1)</script>',
      environments: [
        { name: 'dev' },
        {
          name: '"><img src=x onerror=alert(1)>',
          promotion: {
            state: 'opened',
            revision: '<b>1</b>',
            pullRequest: { number: 3, url: 'javascript:alert(1)', state: 'open' },
          },
        },
      ],
    };

    // Act
    const html = await view([hostile]);

    // Assess
    expect(html).not.toContain('<script>');
    expect(html).not.toContain('<img');
    expect(html).not.toContain('javascript:');
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(html).toContain('#3');
  });

  it('leaves out what it cannot read instead of failing: a pipeline without a name, fields of the wrong type', () => {
    // Prepare
    const body = {
      pipelines: [
        { environments: [] },
        {
          pipeline: 'a/b',
          environments: [{ name: 'dev', targets: 'many', promotion: { state: 7 } }],
        },
      ],
    };

    // Act
    const views = readPipelineViews(body);

    // Assess
    expect(views).toEqual([
      {
        pipeline: 'a/b',
        environments: [{ name: 'dev', promotion: { state: 'unknown', revision: '?' } }],
      },
    ]);
  });

  it('with controls: Approve for a promotion awaiting approval, Freeze or Unfreeze per environment, the freezes listed', async () => {
    // Prepare
    const pipeline = {
      pipeline: 'flux-system/podinfo',
      environments: [
        { name: 'dev' },
        {
          name: 'staging',
          promotion: {
            state: 'awaiting-approval',
            revision: '6.5.0',
            approval: { requestedAt: '2026-11-20T16:00:00Z' },
          },
        },
        {
          name: 'prod',
          promotion: {
            state: 'waiting',
            revision: '6.4.0',
            waitingFor: { freeze: { reason: 'release week', by: 'ops' } },
          },
        },
      ],
    };
    const freezes = [
      {
        pipeline: 'flux-system/podinfo',
        environment: 'prod',
        reason: 'release week',
        by: 'ops',
        until: '2026-11-27T00:00:00Z',
      },
    ];

    // Act
    const html = await view([pipeline], freezes, true);

    // Assess
    expect(html).toContain('data-action="approve"');
    expect(html).toContain('>Approve 6.5.0 into staging</button>');
    expect(html).toContain('>Freeze staging…</button>');
    expect(html).toContain('>Unfreeze prod</button>');
    expect(html).toContain('frozen: release week (by ops)');
    expect(html).toContain('<strong>prod of flux-system/podinfo</strong>: release week by ops');
    expect(html).toContain('>Freeze all pipelines…</button>');
    expect(html).toContain('an approval (requested');
  });

  it('says why when the API cannot be read, and serves no page for paths that are not its own', async () => {
    // Prepare
    const down: StatusPageSource = {
      read: async () => ({
        status: 503,
        body: { error: 'pipeline store temporarily unavailable, retry later' },
      }),
    };

    // Act
    const page = await answerStatusPage('GET', '/', down, { controls: false });
    const other = await answerStatusPage('GET', '/healthz', down, { controls: false });
    const posted = await answerStatusPage('POST', '/', down, { controls: false });

    // Assess
    expect(page?.status).toBe(200);
    expect(page?.body).toContain(
      'Could not read the pipelines: the API answered 503: pipeline store temporarily unavailable, retry later',
    );
    expect(page?.headers['content-security-policy']).toContain("script-src 'self'");
    expect(other).toBeUndefined();
    expect(posted?.status).toBe(405);
  });

  it('waiting for a soak and a window names their times', () => {
    // Prepare
    const promotion = {
      state: 'waiting',
      revision: '1',
      waitingFor: {
        soak: { until: '2026-11-20T16:30:00Z' },
        window: { opensAt: '2026-11-23T08:00:00Z' },
      },
    };

    // Act
    const html = waitingForHtml(promotion);

    // Assess
    expect(html).toBe(
      'soak until <time datetime="2026-11-20T16:30:00.000Z">2026-11-20 16:30:00 UTC</time><br>window opens <time datetime="2026-11-23T08:00:00.000Z">2026-11-23 08:00:00 UTC</time>',
    );
  });
});
