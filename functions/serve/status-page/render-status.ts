import { shortDuration } from '../../core/pipeline-status.ts';
import {
  type EnvironmentView,
  type FreezeView,
  numberAt,
  type PipelineView,
  type PromotionView,
  type TargetView,
  textAt,
} from './status-view.ts';

/*
 * The status page's HTML, rendered on the server for the first paint and for every refresh
 * (`GET /status-page/view`, which the page's script polls): one table per pipeline with its
 * environments as columns in promotion order, and the freezes. Everything that came from the
 * API is escaped; links are only http(s).
 */

export interface StatusViewOptions {
  /** Approve and freeze buttons (loopback `serve`, `promoter ui`). */
  readonly controls: boolean;
}

/** What the view is made of: the API's answers, or why one could not be read. */
export interface StatusViewData {
  readonly pipelines: readonly PipelineView[] | { readonly error: string };
  /** Absent when the server has no freezes route. */
  readonly freezes?: readonly FreezeView[];
}

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

export const escapeHtml = (value: string): string =>
  value.replace(/[&<>"']/g, (character) => ESCAPES[character] ?? character);

const safeLink = (url: string): string | undefined => {
  try {
    const parsed = new URL(url);
    return parsed.protocol === 'https:' || parsed.protocol === 'http:' ? parsed.href : undefined;
  } catch {
    return undefined;
  }
};

/** `2026-11-20 16:01:05 UTC` in a `<time>`; the text as given when it is not a time. */
export const timeHtml = (iso: string): string => {
  const time = Date.parse(iso);
  if (Number.isNaN(time)) return escapeHtml(iso);
  const shown = new Date(time)
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d{3}Z$/, ' UTC');
  return `<time datetime="${escapeHtml(new Date(time).toISOString())}">${shown}</time>`;
};

/** A stable id fragment for the element ids the script restores focus to. */
const idOf = (...parts: string[]): string =>
  parts.map((part) => part.replace(/[^A-Za-z0-9_-]/g, (c) => `_${c.charCodeAt(0)}`)).join('--');

const NONE = '<span class="none">—</span>';

const STATE_TONE: Record<string, string> = {
  deployed: 'good',
  merged: 'good',
  'up-to-date': 'good',
  opened: 'active',
  updated: 'active',
  notified: 'active',
  pushing: 'active',
  queued: 'active',
  waiting: 'wait',
  'awaiting-approval': 'wait',
  failed: 'bad',
  'dead-lettered': 'bad',
  closed: 'muted',
  superseded: 'muted',
  cancelled: 'muted',
};

const stateBadge = (state: string): string =>
  `<span class="state tone-${STATE_TONE[state] ?? 'muted'}" data-state="${escapeHtml(state)}">${escapeHtml(state)}</span>`;

const TIMELINE_LABELS: Record<string, string> = {
  releaseStartedAt: 'release started',
  sourceDeployedAt: 'source deployed',
  approvalRequestedAt: 'approval requested',
  approvedAt: 'approved',
  queuedAt: 'queued',
  pullRequestAt: 'PR up to date',
  mergedAt: 'merged',
  deployedAt: 'deployed',
};

const label = (key: string): string =>
  TIMELINE_LABELS[key] ??
  key
    .replace(/At$/, '')
    .replace(/([a-z])([A-Z])/g, '$1 $2')
    .toLowerCase();

const targetsHtml = (environment: EnvironmentView): string => {
  const targets: readonly TargetView[] | undefined = environment.targets;
  if (targets !== undefined && targets.length > 0) {
    const items = targets.map((target) => {
      const where = [target.cluster, target.namespace].filter(Boolean).join('/');
      const outcome =
        target.ok === false
          ? ' <span class="state tone-bad">failed</span>'
          : target.ok === true
            ? ' <span class="ok">ok</span>'
            : '';
      return `<li><span class="target">${escapeHtml(target.name)}</span>${where !== '' && where !== target.name ? ` <span class="where">${escapeHtml(where)}</span>` : ''}: ${target.revision === undefined ? 'nothing seen yet' : `<code>${escapeHtml(target.revision)}</code>`}${outcome}${target.at === undefined ? '' : ` <span class="at">${timeHtml(target.at)}</span>`}</li>`;
    });
    return `<ul class="targets">${items.join('')}</ul>`;
  }
  if (environment.deployed != null) {
    const at = environment.deployed.eventTimestamp;
    return `<code>${escapeHtml(environment.deployed.revision)}</code>${at === undefined ? '' : ` <span class="at">${timeHtml(at)}</span>`}`;
  }
  return '<span class="none">nothing seen yet</span>';
};

/** `waitingFor` in words; an unknown gate by its name and value. */
export const waitingForHtml = (promotion: PromotionView): string => {
  const waiting = promotion.waitingFor;
  const parts: string[] = [];
  if (waiting != null) {
    for (const [gate, value] of Object.entries(waiting)) {
      if (gate === 'targets') {
        const ready = numberAt(value, 'ready');
        const needed = numberAt(value, 'needed');
        parts.push(`${ready ?? '?'} of ${needed ?? '?'} source targets ready`);
      } else if (gate === 'soak') {
        const until = textAt(value, 'until');
        parts.push(`soak${until === undefined ? '' : ` until ${timeHtml(until)}`}`);
      } else if (gate === 'window') {
        const opensAt = textAt(value, 'opensAt');
        parts.push(`window${opensAt === undefined ? '' : ` opens ${timeHtml(opensAt)}`}`);
      } else if (gate === 'freeze') {
        const reason = textAt(value, 'reason');
        const by = textAt(value, 'by');
        const until = textAt(value, 'until');
        parts.push(
          `frozen${reason === undefined ? '' : `: ${escapeHtml(reason)}`}${by === undefined ? '' : ` (by ${escapeHtml(by)})`}${until === undefined ? '' : `, until ${timeHtml(until)}`}`,
        );
      } else {
        parts.push(`${escapeHtml(gate)}: <code>${escapeHtml(JSON.stringify(value) ?? '')}</code>`);
      }
    }
  }
  if (promotion.state === 'awaiting-approval' || promotion.approval?.requestedAt !== undefined) {
    const approval = promotion.approval;
    if (approval?.approvedAt !== undefined) {
      parts.push(
        `approved ${timeHtml(approval.approvedAt)}${approval.approvedBy === undefined ? '' : ` by ${escapeHtml(approval.approvedBy)}`}`,
      );
    } else if (promotion.state === 'awaiting-approval') {
      parts.push(
        `an approval${approval?.requestedAt === undefined ? '' : ` (requested ${timeHtml(approval.requestedAt)})`}`,
      );
    }
  }
  return parts.length === 0 ? NONE : parts.join('<br>');
};

const pullRequestHtml = (promotion: PromotionView): string => {
  const pull = promotion.pullRequest;
  if (pull == null) return NONE;
  const href = safeLink(pull.url);
  const name = `#${pull.number}`;
  const link =
    href === undefined
      ? escapeHtml(name)
      : `<a href="${escapeHtml(href)}" rel="noreferrer">${escapeHtml(name)}</a>`;
  const merged = pull.mergedAt == null ? '' : ` ${timeHtml(pull.mergedAt)}`;
  return `${link} ${pull.state === undefined ? '' : stateBadge(pull.state)}${merged}`;
};

const timelineHtml = (promotion: PromotionView): string => {
  const entries = Object.entries(promotion.timeline ?? {}).flatMap(([key, value]) =>
    typeof value === 'string' ? [{ key, value, at: Date.parse(value) }] : [],
  );
  if (entries.length === 0) return NONE;
  entries.sort((a, b) => (a.at || 0) - (b.at || 0));
  return `<ol class="timeline">${entries.map((entry) => `<li><span class="label">${escapeHtml(label(entry.key))}</span> ${timeHtml(entry.value)}</li>`).join('')}</ol>`;
};

/** One sentence the script announces when it changes. */
const summary = (pipeline: PipelineView, environment: EnvironmentView): string => {
  const promotion = environment.promotion;
  const state =
    promotion == null ? 'no promotion' : `promotion of ${promotion.revision} ${promotion.state}`;
  const pull =
    promotion?.pullRequest == null
      ? ''
      : `, PR #${promotion.pullRequest.number} ${promotion.pullRequest.state ?? ''}`.trimEnd();
  return `${pipeline.pipeline} ${environment.name}: ${state}${pull}`;
};

interface Scope {
  readonly pipeline?: string;
  readonly environment?: string;
}

const scopeText = (scope: Scope): string =>
  scope.pipeline === undefined
    ? 'all pipelines'
    : scope.environment === undefined
      ? `${scope.pipeline} (all environments)`
      : `${scope.environment} of ${scope.pipeline}`;

const freezeMatches = (freeze: FreezeView, scope: Scope): boolean =>
  freeze.pipeline === scope.pipeline && freeze.environment === scope.environment;

const button = (
  action: 'approve' | 'freeze' | 'unfreeze',
  text: string,
  data: Record<string, string | undefined>,
): string => {
  const attributes = Object.entries(data)
    .filter((entry): entry is [string, string] => entry[1] !== undefined)
    .map(([key, value]) => ` data-${key}="${escapeHtml(value)}"`)
    .join('');
  const focusKey = idOf(action, data.pipeline ?? '*', data.environment ?? '*');
  return `<button type="button" class="action action-${action}" data-action="${action}" data-focus-key="${focusKey}"${attributes}>${escapeHtml(text)}</button>`;
};

const actionsHtml = (
  pipeline: PipelineView,
  environment: EnvironmentView,
  index: number,
  freezes: readonly FreezeView[] | undefined,
): string => {
  const scope = { pipeline: pipeline.pipeline, environment: environment.name };
  const buttons: string[] = [];
  const promotion = environment.promotion;
  if (promotion?.state === 'awaiting-approval') {
    buttons.push(
      button('approve', `Approve ${promotion.revision} into ${environment.name}`, {
        ...scope,
        revision: promotion.revision,
      }),
    );
  }
  // The first environment is never promoted into: nothing to freeze there.
  if (index > 0) {
    const frozen =
      freezes?.some((freeze) => freezeMatches(freeze, scope)) ??
      promotion?.waitingFor?.freeze !== undefined;
    buttons.push(
      frozen
        ? button('unfreeze', `Unfreeze ${environment.name}`, scope)
        : button('freeze', `Freeze ${environment.name}…`, {
            ...scope,
            scope: scopeText(scope),
          }),
    );
  }
  return buttons.length === 0 ? NONE : `<div class="actions">${buttons.join('')}</div>`;
};

const pipelineHtml = (
  pipeline: PipelineView,
  options: StatusViewOptions,
  freezes: readonly FreezeView[] | undefined,
): string => {
  const id = idOf('pipeline', pipeline.pipeline);
  const app =
    pipeline.app === undefined || pipeline.app.name === ''
      ? ''
      : ` <span class="app">${escapeHtml(`${pipeline.app.kind} ${pipeline.app.name}`.trim())}</span>`;
  const environments = pipeline.environments;
  const cells = (
    rowName: string,
    cell: (environment: EnvironmentView, index: number) => string,
    attributes: (environment: EnvironmentView) => string = () => '',
  ) =>
    `<tr><th scope="row">${rowName}</th>${environments.map((environment, index) => `<td${attributes(environment)}>${cell(environment, index)}</td>`).join('')}</tr>`;
  const promotionCell = (environment: EnvironmentView, index: number) => {
    const promotion = environment.promotion;
    if (promotion == null) {
      return index === 0 ? '<span class="none">first environment</span>' : NONE;
    }
    return `${stateBadge(promotion.state)} <code>${escapeHtml(promotion.revision)}</code>${promotion.from === undefined ? '' : ` <span class="from">from ${escapeHtml(promotion.from)}</span>`}${promotion.updatedAt === undefined ? '' : `<br><span class="at">since ${timeHtml(promotion.updatedAt)}</span>`}`;
  };
  const anyFailure = environments.some((environment) => environment.promotion?.failure != null);
  const rows = [
    cells('Runs', targetsHtml),
    cells('Promotion', promotionCell, (environment) => {
      const key = `${pipeline.pipeline}/${environment.name}`;
      return ` data-announce-key="${escapeHtml(key)}" data-announce="${escapeHtml(summary(pipeline, environment))}"`;
    }),
    cells('Waiting for', (environment) =>
      environment.promotion == null ? NONE : waitingForHtml(environment.promotion),
    ),
    cells('Pull request', (environment) =>
      environment.promotion == null ? NONE : pullRequestHtml(environment.promotion),
    ),
    cells('Timeline', (environment) =>
      environment.promotion == null ? NONE : timelineHtml(environment.promotion),
    ),
    cells('Lead time', (environment) =>
      environment.promotion?.leadTimeMs == null
        ? NONE
        : escapeHtml(shortDuration(environment.promotion.leadTimeMs)),
    ),
    ...(anyFailure
      ? [
          cells('Failure', (environment) => {
            const failure = environment.promotion?.failure;
            return failure == null
              ? NONE
              : `<span class="failure"><code>${escapeHtml(failure.code)}</code> ${escapeHtml(failure.message)}</span>`;
          }),
        ]
      : []),
    ...(options.controls
      ? [
          cells('Actions', (environment, index) =>
            actionsHtml(pipeline, environment, index, freezes),
          ),
        ]
      : []),
  ];
  const header = environments
    .map((environment) => `<th scope="col">${escapeHtml(environment.name)}</th>`)
    .join('');
  return `<section class="pipeline" aria-labelledby="${id}">
<h2 id="${id}">${escapeHtml(pipeline.pipeline)}${app}</h2>
<div class="scroll" role="region" aria-labelledby="${id}" tabindex="0" data-focus-key="${idOf('scroll', pipeline.pipeline)}">
<table>
<caption class="visually-hidden">Environments of ${escapeHtml(pipeline.pipeline)}, in promotion order</caption>
<thead><tr><td></td>${header}</tr></thead>
<tbody>${rows.join('\n')}</tbody>
</table>
</div>
</section>`;
};

const freezesHtml = (freezes: readonly FreezeView[], options: StatusViewOptions): string => {
  const items = freezes.map((freeze) => {
    const scope = {
      ...(freeze.pipeline === undefined ? {} : { pipeline: freeze.pipeline }),
      ...(freeze.environment === undefined ? {} : { environment: freeze.environment }),
    };
    const details = [
      freeze.by === undefined ? '' : ` by ${escapeHtml(freeze.by)}`,
      freeze.at === undefined ? '' : ` since ${timeHtml(freeze.at)}`,
      freeze.until === undefined ? '' : `, until ${timeHtml(freeze.until)}`,
    ].join('');
    const unfreeze = options.controls
      ? ` ${button('unfreeze', `Unfreeze ${scopeText(scope)}`, scope)}`
      : '';
    return `<li><strong>${escapeHtml(scopeText(scope))}</strong>${freeze.reason === undefined ? '' : `: ${escapeHtml(freeze.reason)}`}${details}${unfreeze}</li>`;
  });
  const freezeAll =
    options.controls && !freezes.some((freeze) => freeze.pipeline === undefined)
      ? `<p>${button('freeze', 'Freeze all pipelines…', { scope: scopeText({}) })}</p>`
      : '';
  return `<section class="freezes" aria-labelledby="freezes-title">
<h2 id="freezes-title">Freezes</h2>
${items.length === 0 ? '<p>No freezes: promotions go ahead.</p>' : `<ul>${items.join('')}</ul>`}
${freezeAll}
</section>`;
};

/** The page's main content: the pipelines, then the freezes. */
export const renderStatusView = (data: StatusViewData, options: StatusViewOptions): string => {
  const parts: string[] = [];
  if ('error' in data.pipelines) {
    parts.push(
      `<p class="error" role="alert">Could not read the pipelines: ${escapeHtml(data.pipelines.error)}</p>`,
    );
  } else if (data.pipelines.length === 0) {
    parts.push(
      '<p>No pipelines yet. <code>promoter serve</code> reads them from <code>--pipelines</code>; on AWS, <code>promoter sync</code> stores them.</p>',
    );
  } else {
    for (const pipeline of data.pipelines) {
      parts.push(pipelineHtml(pipeline, options, data.freezes));
    }
  }
  if (data.freezes !== undefined) parts.push(freezesHtml(data.freezes, options));
  return parts.join('\n');
};
