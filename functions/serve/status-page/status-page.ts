import { PAGE_CSS, PAGE_SCRIPT } from './page-assets.ts';
import { escapeHtml, renderStatusView, type StatusViewData } from './render-status.ts';
import { readFreezeViews, readPipelineViews } from './status-view.ts';

/*
 * The status page, for `promoter serve` (reading its own pipelines API in process) and
 * `promoter ui` (reading the AWS API, signed): `GET /` (the page, rendered on the server),
 * `GET /status-page/view` (its main content, which the page's script polls), and the page's
 * stylesheet and script. The approve and freeze buttons call the pipelines API's own routes.
 */

export const STATUS_PAGE_PATHS = {
  page: '/',
  view: '/status-page/view',
  css: '/status-page/page.css',
  script: '/status-page/page.js',
} as const;

/** Where the page reads the pipelines API: an answer's status and its JSON body. */
export interface StatusPageSource {
  read(
    path: '/pipelines' | '/freezes',
  ): Promise<{ readonly status: number; readonly body: unknown }>;
}

export interface StatusPageOptions {
  /** Show the approve and freeze buttons. */
  readonly controls: boolean;
  /** How often the page refreshes (default 3 s). */
  readonly refreshMs?: number;
  /** Shown under the title: where the data comes from. */
  readonly subtitle?: string;
}

export interface StatusPageAnswer {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

export const DEFAULT_REFRESH_MS = 3_000;

/** The page's own assets and script only; no inline script or style, no other origin. */
const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

const answer = (status: number, type: string, body: string): StatusPageAnswer => ({
  status,
  headers: {
    ...SECURITY_HEADERS,
    'content-type': `${type}; charset=utf-8`,
    'content-length': String(Buffer.byteLength(body)),
  },
  body,
});

const errorOf = (status: number, body: unknown): string => {
  const message =
    typeof body === 'object' && body !== null
      ? ((body as Record<string, unknown>).error ?? (body as Record<string, unknown>).message)
      : undefined;
  return `the API answered ${status}${typeof message === 'string' ? `: ${message}` : ''}`;
};

/** Reads what the view shows; a failed read becomes a message on the page, not an error. */
export const readStatusViewData = async (source: StatusPageSource): Promise<StatusViewData> => {
  const [pipelines, freezes] = await Promise.all([
    source.read('/pipelines').catch((error: unknown) => ({
      status: 0,
      body: { error: error instanceof Error ? error.message : String(error) },
    })),
    source.read('/freezes').catch(() => ({ status: 0, body: undefined })),
  ]);
  return {
    pipelines:
      pipelines.status === 200
        ? readPipelineViews(pipelines.body)
        : {
            error:
              pipelines.status === 0
                ? String((pipelines.body as { error: string }).error)
                : errorOf(pipelines.status, pipelines.body),
          },
    // A server without the freezes route (404) shows no freezes section.
    ...(freezes.status === 200 ? { freezes: readFreezeViews(freezes.body) } : {}),
  };
};

/** The whole page around the view (server-rendered: it reads without the script). */
export const renderStatusPage = (view: string, options: StatusPageOptions): string => {
  const refreshMs = options.refreshMs ?? DEFAULT_REFRESH_MS;
  const dialog = options.controls
    ? `<dialog id="freeze-dialog" aria-labelledby="freeze-title">
<form method="dialog">
<h2 id="freeze-title">Freeze promotions</h2>
<p>Promotions into <strong id="freeze-scope"></strong> wait until it is unfrozen.</p>
<label for="freeze-reason">Reason</label>
<input id="freeze-reason" name="reason" required maxlength="500" autocomplete="off">
<label for="freeze-until">Until (optional, your local time)</label>
<input id="freeze-until" name="until" type="datetime-local">
<menu><button type="submit" value="freeze">Freeze</button><button type="submit" value="cancel" formnovalidate>Cancel</button></menu>
</form>
</dialog>`
    : '';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Pipeline Promoter: promotions</title>
<link rel="stylesheet" href="status-page/page.css">
</head>
<body>
<header>
<h1>Promotions</h1>
${options.subtitle === undefined ? '' : `<span class="app">${escapeHtml(options.subtitle)}</span>`}
<span id="updated" aria-live="off"></span>
</header>
<main id="pipelines" data-refresh-ms="${refreshMs}">
${view}
</main>
<div class="live-wrap">
<p id="action-result" role="status" aria-live="polite" aria-atomic="true"></p>
<p id="live" role="status" aria-live="polite" aria-atomic="true"></p>
</div>
${dialog}
<script src="status-page/page.js" defer></script>
</body>
</html>
`;
};

/**
 * Answers a status page request, or undefined when the path is not one of the page's (the
 * caller routes it elsewhere). Only GET and HEAD.
 */
export const answerStatusPage = async (
  method: string,
  path: string,
  source: StatusPageSource,
  options: StatusPageOptions,
): Promise<StatusPageAnswer | undefined> => {
  const known = (Object.values(STATUS_PAGE_PATHS) as string[]).includes(path);
  if (!known) return undefined;
  if (method !== 'GET' && method !== 'HEAD') {
    const refused = answer(405, 'text/plain', 'use GET\n');
    return { ...refused, headers: { ...refused.headers, allow: 'GET, HEAD' } };
  }
  switch (path) {
    case STATUS_PAGE_PATHS.css:
      return answer(200, 'text/css', PAGE_CSS);
    case STATUS_PAGE_PATHS.script:
      return answer(200, 'text/javascript', PAGE_SCRIPT);
    case STATUS_PAGE_PATHS.view:
      return answer(200, 'text/html', renderStatusView(await readStatusViewData(source), options));
    default:
      return answer(
        200,
        'text/html',
        renderStatusPage(renderStatusView(await readStatusViewData(source), options), options),
      );
  }
};
