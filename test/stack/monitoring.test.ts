import { readFileSync } from 'node:fs';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { ENV } from '../../functions/config.ts';
import { METRICS_NAMESPACE, Metric } from '../../functions/core/metric-names.ts';
import {
  type DimensionSet,
  dimensionSetsOf,
  METRICS_DETAILS,
  type MetricsDetail,
} from '../../functions/core/metrics-detail.ts';
import { PipelinePromoterStack, parseSettings } from '../../lib/pipeline-promoter-stack.ts';

/**
 * The dashboard and the alarms at each `metricsDetail` read only the metric names and dimension
 * sets the functions emit (core/metrics-detail.ts, the list the EMF sink applies: the EMF test
 * checks that list against Powertools' real output), and the per-application views are Logs
 * Insights queries over the functions' log groups. Synthesised without bundling: only read.
 */
const cdkContext = (
  JSON.parse(readFileSync(new URL('../../cdk.json', import.meta.url), 'utf8')) as {
    context: Record<string, unknown>;
  }
).context;

type Resource = { Type: string; Properties: Record<string, unknown> };
type Widget = {
  type: string;
  properties: {
    title?: string;
    metrics?: unknown[][];
    query?: string;
    period?: number;
    start?: string;
  };
};

const templates = new Map<MetricsDetail, Template>();

beforeAll(() => {
  for (const detail of METRICS_DETAILS) {
    const app = new App({ context: { ...cdkContext, 'aws:cdk:bundling-stacks': [] } });
    const stack = new PipelinePromoterStack(app, `Monitoring-${detail}`, {
      metricsDetail: detail,
      alarmEmail: 'platform-team@example.com',
    });
    templates.set(detail, Template.fromStack(stack));
  }
}, 120_000);

const templateOf = (detail: MetricsDetail): Template => {
  const template = templates.get(detail);
  if (template === undefined) throw new Error(`no template for ${detail}`);
  return template;
};

const dashboardBody = (detail: MetricsDetail): { text: string; refs: string[] } => {
  const [dashboard] = Object.values(
    templateOf(detail).findResources('AWS::CloudWatch::Dashboard'),
  ) as Resource[];
  const body = dashboard?.Properties.DashboardBody as { 'Fn::Join': [string, unknown[]] };
  const parts = body['Fn::Join'][1];
  return {
    text: parts.map((part) => (typeof part === 'string' ? part : 'TOKEN')).join(''),
    refs: parts.flatMap((part) =>
      typeof part === 'object' && part !== null && 'Ref' in part ? [String(part.Ref)] : [],
    ),
  };
};
const widgetsOf = (detail: MetricsDetail): Widget[] =>
  (JSON.parse(dashboardBody(detail).text) as { widgets: Widget[] }).widgets;

/** A metric name and the dimension keys a dashboard cell or alarm query reads. */
interface MetricRead {
  readonly name: string;
  readonly set: DimensionSet;
  readonly where: string;
}

const SEARCH = /SEARCH\('\{([^}]*)\} MetricName="([^"]+)"'/g;

/** Every custom metric of the namespace that the dashboard reads, with its dimension keys. */
const dashboardReads = (detail: MetricsDetail): MetricRead[] => {
  const reads: MetricRead[] = [];
  for (const widget of widgetsOf(detail)) {
    for (const row of widget.properties.metrics ?? []) {
      const where = widget.properties.title ?? '(untitled)';
      for (const cell of row) {
        const expression = (cell as { expression?: unknown } | null)?.expression;
        if (typeof expression !== 'string') continue;
        expect(expression, where).not.toContain(`Namespace="${METRICS_NAMESPACE}"`);
        for (const [, schema = '', name = ''] of expression.matchAll(SEARCH)) {
          const [namespace, ...set] = schema.split(',');
          expect(namespace, where).toBe(METRICS_NAMESPACE);
          reads.push({ name, set: set as DimensionSet, where });
        }
      }
      // A plain metric row: [namespace, name, dimension, value, ..., options?].
      if (row[0] === METRICS_NAMESPACE) {
        const cells = row.filter((cell) => typeof cell === 'string') as string[];
        const [, name = '', ...pairs] = cells;
        const set = pairs.filter((_, index) => index % 2 === 0) as DimensionSet[number][];
        reads.push({ name, set, where });
      }
    }
  }
  return reads;
};

const QUERY = /SELECT SUM\((\w+)\) FROM SCHEMA\(([^)]*)\)/;

const alarmReads = (detail: MetricsDetail): MetricRead[] =>
  (Object.values(templateOf(detail).findResources('AWS::CloudWatch::Alarm')) as Resource[]).flatMap(
    (alarm) => {
      const where = String(alarm.Properties.AlarmDescription);
      if (alarm.Properties.Namespace !== undefined) {
        expect(alarm.Properties.Namespace, where).toMatch(/^AWS\//);
        return [];
      }
      return ((alarm.Properties.Metrics ?? []) as { Expression?: string }[]).map((metric) => {
        const match = QUERY.exec(metric.Expression ?? '');
        expect(match, where).not.toBeNull();
        const [namespace, ...set] = (match?.[2] ?? '').split(',').map((part) => part.trim());
        expect(namespace, where).toBe(METRICS_NAMESPACE);
        return { name: match?.[1] ?? '', set: set as DimensionSet, where };
      });
    },
  );

const emitted = (read: MetricRead, detail: MetricsDetail): boolean =>
  dimensionSetsOf(read.name, detail).some(
    (set) => JSON.stringify([...set].sort()) === JSON.stringify([...read.set].sort()),
  ) && (Object.values(Metric) as string[]).includes(read.name);

describe.each(METRICS_DETAILS)('metricsDetail %s', (detail) => {
  it('the dashboard reads only emitted names and dimension sets, and every name', () => {
    // Act
    const reads = dashboardReads(detail);

    // Assess
    expect(reads.length).toBeGreaterThan(20);
    for (const read of reads) {
      expect(emitted(read, detail), `${read.name} {${read.set.join(',')}} in ${read.where}`).toBe(
        true,
      );
    }
    expect(new Set(reads.map((read) => read.name))).toEqual(new Set(Object.values(Metric)));
  });

  it('the alarms read only emitted names and dimension sets', () => {
    // Act
    const reads = alarmReads(detail);

    // Assess
    expect(reads).toHaveLength(1);
    for (const read of reads) expect(emitted(read, detail), read.where).toBe(true);
    expect(Object.keys(templateOf(detail).findResources('AWS::CloudWatch::Alarm'))).toHaveLength(4);
  });

  it('gives every function its metricsDetail', () => {
    // Act
    const functions = Object.values(
      templateOf(detail).findResources('AWS::Lambda::Function'),
    ) as Resource[];

    // Assess
    expect(functions).toHaveLength(4);
    for (const fn of functions) {
      const variables = (fn.Properties.Environment as { Variables: Record<string, unknown> })
        .Variables;
      expect(variables[ENV.metricsDetail]).toBe(detail);
    }
  });

  it('shows the per-application views as Logs Insights queries over the EMF log groups', () => {
    // Prepare
    const { refs } = dashboardBody(detail);
    const logGroups = Object.entries(
      templateOf(detail).findResources('AWS::Logs::LogGroup'),
    ).filter(([id]) => /Webhook|Worker|Reconcile/.test(id));

    // Act
    const queries = widgetsOf(detail).filter((widget) => widget.type === 'log');

    // Assess
    expect(queries.map((widget) => widget.properties.title)).toEqual([
      expect.stringMatching(/^By application: promotion latency p50, p90/),
      expect.stringMatching(/^By application: promotion lead time p50, p90/),
      expect.stringMatching(/^By application and environment: DORA/),
    ]);
    const [latency, leadTime, dora] = queries.map((widget) => widget.properties.query ?? '');
    expect(latency).toContain(
      `pct(${Metric.PromotionLatency}, 50) as p50Ms, pct(${Metric.PromotionLatency}, 90) as p90Ms`,
    );
    expect(latency).toContain('by Application, Environment');
    expect(leadTime).toContain(`pct(${Metric.PromotionLeadTime}, 90)`);
    for (const metric of [
      Metric.Deployments,
      Metric.DeploymentFailures,
      Metric.ReleaseLeadTime,
      Metric.TimeToRestore,
    ]) {
      expect(dora).toContain(metric);
    }
    expect(dora).toMatch(/by Application, Environment$/m);
    expect(logGroups).toHaveLength(3);
    for (const [id] of logGroups) expect(refs.filter((ref) => ref === id)).toHaveLength(3);
  });

  it('keeps the DORA row by day over 30 days', () => {
    // Act
    const dora = widgetsOf(detail).filter((widget) => widget.properties.title?.startsWith('DORA:'));

    // Assess
    expect(dora).toHaveLength(4);
    for (const widget of dora) {
      expect(widget.properties).toMatchObject({ period: 86_400, start: '-P30D' });
    }
  });
});

describe('the dashboard and alarm expressions', () => {
  it('standard: SEARCH the Environment set of the two promotion times; the others and the alarm have none', () => {
    // Act
    const reads = dashboardReads('standard');
    const [alarm] = alarmReads('standard');

    // Assess
    expect(reads).toContainEqual(
      expect.objectContaining({ name: Metric.PromotionLatency, set: ['Environment'] }),
    );
    expect(reads).toContainEqual(
      expect.objectContaining({ name: Metric.PromotionLeadTime, set: ['Environment'] }),
    );
    expect(reads).toContainEqual(
      expect.objectContaining({ name: Metric.PromotionsWaiting, set: ['Gate'] }),
    );
    for (const name of [Metric.Deployments, Metric.PullRequestMergeTime, Metric.PromotionsFailed]) {
      expect(reads.filter((read) => read.name === name).length, name).toBeGreaterThan(0);
      for (const read of reads.filter((each) => each.name === name)) {
        expect(read.set, `${name} in ${read.where}`).toEqual([]);
      }
    }
    expect(alarm).toMatchObject({ name: Metric.PromotionsDeadLettered, set: [] });
    templateOf('standard').hasResourceProperties('AWS::CloudWatch::Alarm', {
      Metrics: [
        {
          Expression: `SELECT SUM(${Metric.PromotionsDeadLettered}) FROM SCHEMA(${METRICS_NAMESPACE})`,
          Period: 300,
          ReturnData: true,
        },
      ],
    });
  });

  it('minimal: plain metrics without dimensions; the alarm sums the dimensionless metric', () => {
    // Act
    const reads = dashboardReads('minimal');

    // Assess
    expect(reads.every((read) => read.set.length === 0)).toBe(true);
    templateOf('minimal').hasResourceProperties('AWS::CloudWatch::Alarm', {
      Metrics: [
        {
          Expression: `SELECT SUM(${Metric.PromotionsDeadLettered}) FROM SCHEMA(${METRICS_NAMESPACE})`,
          Period: 300,
          ReturnData: true,
        },
      ],
    });
  });

  it('refuses an unknown metricsDetail, naming the setting', () => {
    // Act
    const parse = () => parseSettings({ metricsDetail: 'everything' });

    // Assess
    expect(parse).toThrow(/metricsDetail: expected one of minimal, standard, per-application/);
    expect(parseSettings({ metricsDetail: 'per-application' })).toEqual({
      metricsDetail: 'per-application',
    });
  });
});
