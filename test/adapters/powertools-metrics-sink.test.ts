import { describe, expect, it, vi } from 'vitest';
import { silentLogger } from '../../functions/core/logger.ts';
import { Gate, METRICS_NAMESPACE, Metric } from '../../functions/core/metric-names.ts';
import type { MetricsDetail } from '../../functions/core/metrics-detail.ts';
import type { MetricPoint, MetricsSink } from '../../functions/core/ports.ts';
import type { PromotionDependencies } from '../../functions/core/promotion.ts';
import { recordDeadLetter, runPromotion } from '../../functions/core/promotion.ts';
import { signBody } from '../../functions/core/signature.ts';
import { handleWebhookRequest, type WebhookRequest } from '../../functions/core/webhook.ts';
import { createMetrics, PowertoolsMetricsSink } from '../../functions/observability.ts';
import { FIXTURE_HMAC_KEY, freshEvent } from '../support/fixtures.ts';
import { webhookHarness } from '../support/webhook-harness.ts';

/**
 * The EMF that the real Powertools Metrics writes on stdout for a scripted burst, at each
 * `metricsDetail`: exactly the dimension sets DESIGN.md section 9 promises, and every other fact
 * of a point (pipeline, application, revision) still on its record, for Logs Insights.
 */
interface EmfRecord {
  readonly _aws: {
    readonly CloudWatchMetrics: readonly {
      readonly Namespace: string;
      readonly Dimensions: readonly (readonly string[])[];
      readonly Metrics: readonly { readonly Name: string; readonly Unit: string }[];
    }[];
  };
  readonly [key: string]: unknown;
}

/** Runs `act` with stdout captured, and answers the EMF documents written meanwhile. */
const captureEmf = async (act: () => Promise<void>): Promise<EmfRecord[]> => {
  const chunks: string[] = [];
  const write = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: unknown) => {
    chunks.push(String(chunk));
    return true;
  });
  try {
    await act();
  } finally {
    write.mockRestore();
  }
  return chunks
    .join('')
    .split('\n')
    .filter((line) => line.includes('"_aws"'))
    .map((line) => JSON.parse(line) as EmfRecord);
};

const directiveOf = (record: EmfRecord) => {
  const [directive] = record._aws.CloudWatchMetrics;
  if (directive === undefined) throw new Error('an EMF record without a metric directive');
  return directive;
};
const nameOf = (record: EmfRecord): string => directiveOf(record).Metrics[0]?.Name ?? '';

const signed = (path: string, body: string): WebhookRequest => ({
  method: 'POST',
  path,
  headers: { 'x-signature': signBody(body, FIXTURE_HMAC_KEY), 'content-type': 'application/json' },
  body: Buffer.from(body),
});

const PIPELINE_POINT_NAMES = [
  Metric.PromotionsOpened,
  Metric.PromotionsUpdated,
  Metric.PromotionsUpToDate,
  Metric.PromotionsSuperseded,
  Metric.PromotionsSettled,
  Metric.PromotionsFailed,
  Metric.PromotionLatency,
  Metric.PromotionLeadTime,
  Metric.PullRequestMergeTime,
  Metric.MergeToDeployTime,
  Metric.ApprovalWaitTime,
  Metric.DeploymentFailures,
  Metric.ReleaseLeadTime,
  Metric.TimeToRestore,
] as const;

/**
 * The burst: the webhook core's own points for the podinfo fixture (deployments in dev, staging
 * and prod, a bad signature, an invalid body), the worker core's own points for a job whose
 * pipeline is gone and for a dead-lettered job, then, as the worker and lifecycle cores record
 * them (every fact in `dimensions`), each other metric for `pipelines` scripted pipelines.
 */
const burst = async (sink: MetricsSink, pipelines: number): Promise<void> => {
  const harness = webhookHarness();
  const deps = { ...harness.deps, metrics: sink };
  for (const environment of ['dev', 'staging', 'prod']) {
    await handleWebhookRequest(
      signed(
        `/promotion/flux-system/podinfo/${environment}`,
        freshEvent('helmrelease-upgrade-succeeded.json'),
      ),
      deps,
    );
  }
  await handleWebhookRequest(
    { ...signed('/promotion/flux-system/podinfo/dev', '{}'), headers: { 'x-signature': 'x' } },
    deps,
  );
  await handleWebhookRequest(signed('/promotion/flux-system/podinfo/dev', '{"not":"flux"}'), deps);

  const [job] = harness.jobs;
  if (job === undefined) throw new Error('the dev event enqueued no job');
  const gone = {
    ...({} as PromotionDependencies),
    pipelines: { get: async () => undefined },
    state: harness.state,
    clock: { now: () => new Date() },
    metrics: sink,
    logger: silentLogger,
  };
  await runPromotion(job, gone);
  await recordDeadLetter(job, new Error('kept failing'), gone);

  for (let index = 0; index < pipelines; index += 1) {
    for (const environment of ['staging', 'prod']) {
      const facts = {
        dimensions: {
          Pipeline: `team-${index}/app-${index}`,
          Application: `app-${index}`,
          Environment: environment,
        },
        metadata: { revision: `1.${index}.0`, jobId: `job-${index}` },
      };
      for (const name of PIPELINE_POINT_NAMES) {
        sink.record({ name, unit: 'Milliseconds', value: 100 + index, ...facts });
      }
      for (const gate of Object.values(Gate)) {
        sink.record({
          name: Metric.PromotionsWaiting,
          unit: 'Count',
          value: 1,
          dimensions: { ...facts.dimensions, Gate: gate },
          metadata: facts.metadata,
        });
      }
      sink.record({
        name: Metric.StalePullRequestsClosed,
        unit: 'Count',
        value: 1,
        dimensions: { Environment: environment },
        metadata: { pipeline: facts.dimensions.Pipeline, pullRequest: 'https://x/pull/1' },
      });
    }
  }
  for (const outcome of ['accepted', 'ignored', 'rejected-signature']) {
    sink.record({
      name: Metric.GitHubWebhookRequests,
      unit: 'Count',
      value: 1,
      dimensions: { Outcome: outcome },
    } satisfies MetricPoint);
  }
};

const emfOfBurst = (detail: MetricsDetail, pipelines: number): Promise<EmfRecord[]> => {
  const sink = new PowertoolsMetricsSink(detail, createMetrics('emf-test'));
  return captureEmf(() => burst(sink, pipelines));
};

/** The dimension sets of each metric name, as the records declare them. */
const dimensionSetsByName = (records: readonly EmfRecord[]) => {
  const sets = new Map<string, Set<string>>();
  for (const record of records) {
    const name = nameOf(record);
    const seen = sets.get(name) ?? new Set<string>();
    seen.add(JSON.stringify(directiveOf(record).Dimensions));
    sets.set(name, seen);
  }
  return Object.fromEntries(
    [...sets].map(([name, seen]) => [name, [...seen].map((set) => JSON.parse(set))]),
  );
};

/** CloudWatch's custom metrics: one per name, dimension set and dimension values. */
const customMetrics = (records: readonly EmfRecord[]): Set<string> => {
  const metrics = new Set<string>();
  for (const record of records) {
    for (const set of directiveOf(record).Dimensions) {
      metrics.add(`${nameOf(record)}${JSON.stringify(set.map((key) => [key, record[key]]))}`);
    }
  }
  return metrics;
};

const EVERY_NAME = [
  ...PIPELINE_POINT_NAMES,
  Metric.WebhookRequests,
  Metric.GitHubWebhookRequests,
  Metric.Deployments,
  Metric.PromotionsDropped,
  Metric.PromotionsDeadLettered,
  Metric.PromotionsWaiting,
  Metric.StalePullRequestsClosed,
].sort();

describe('PowertoolsMetricsSink: the EMF of a burst has the dimension sets metricsDetail promises', () => {
  it('standard: Environment on latency and lead time, Outcome for webhook requests, Gate for waiting, else none', async () => {
    // Act
    const records = await emfOfBurst('standard', 3);

    // Assess
    const sets = dimensionSetsByName(records);
    expect(Object.keys(sets).sort()).toEqual(EVERY_NAME);
    for (const [name, declared] of Object.entries(sets)) {
      if (name === Metric.WebhookRequests) {
        expect(declared, name).toEqual([[['Outcome']]]);
      } else if (name === Metric.PromotionLatency || name === Metric.PromotionLeadTime) {
        expect(declared, name).toEqual([[['Environment']]]);
      } else if (name === Metric.PromotionsWaiting) {
        expect(declared, name).toEqual([[['Gate']]]);
      } else {
        expect(declared, name).toEqual([[[]]]);
      }
    }
    expect(records.every((record) => directiveOf(record).Namespace === METRICS_NAMESPACE)).toBe(
      true,
    );
  });

  it('per-application: Application × Environment beside Environment on latency and lead time only', async () => {
    // Act
    const records = await emfOfBurst('per-application', 3);

    // Assess
    const sets = dimensionSetsByName(records);
    expect(Object.keys(sets).sort()).toEqual(EVERY_NAME);
    for (const name of [Metric.PromotionLatency, Metric.PromotionLeadTime]) {
      expect(sets[name], name).toEqual([[['Environment'], ['Application', 'Environment']]]);
    }
    expect(sets[Metric.PullRequestMergeTime]).toEqual([[[]]]);
    expect(sets[Metric.Deployments]).toEqual([[[]]]);
    expect(sets[Metric.WebhookRequests]).toEqual([[['Outcome']]]);
    expect(sets[Metric.PromotionsWaiting]).toEqual([[['Gate']]]);
  });

  it('minimal: no dimension on any metric', async () => {
    // Act
    const records = await emfOfBurst('minimal', 3);

    // Assess
    const sets = dimensionSetsByName(records);
    expect(Object.keys(sets).sort()).toEqual(EVERY_NAME);
    for (const [name, declared] of Object.entries(sets)) expect(declared, name).toEqual([[[]]]);
  });

  it('keeps the pipeline, application and revision of every point on its record', async () => {
    // Act
    const records = await emfOfBurst('standard', 2);

    // Assess
    const ofPipelines = records.filter(
      (record) =>
        ![
          Metric.WebhookRequests,
          Metric.GitHubWebhookRequests,
          Metric.StalePullRequestsClosed,
        ].includes(nameOf(record) as never),
    );
    expect(ofPipelines.length).toBeGreaterThan(PIPELINE_POINT_NAMES.length * 4);
    for (const record of ofPipelines) {
      expect(record, nameOf(record)).toMatchObject({
        Pipeline: expect.stringMatching(/^[\w-]+\/[\w-]+$/),
        Application: expect.any(String),
        Environment: expect.any(String),
        revision: expect.any(String),
      });
    }
    const webhook = records.find((record) => nameOf(record) === Metric.Deployments);
    expect(webhook).toMatchObject({
      Pipeline: 'flux-system/podinfo',
      Application: 'podinfo',
      revision: '6.5.0',
    });
    expect(records.every((record) => !('service' in record))).toBe(true);
  });

  it('standard and minimal: the custom metric count does not grow with pipelines; per-application does', async () => {
    // Act
    const counts = async (detail: MetricsDetail) => [
      customMetrics(await emfOfBurst(detail, 3)).size,
      customMetrics(await emfOfBurst(detail, 12)).size,
    ];
    const standard = await counts('standard');
    const minimal = await counts('minimal');
    const perApplication = await counts('per-application');

    // Assess
    expect(standard[0]).toBe(standard[1]);
    expect(minimal[0]).toBe(minimal[1]);
    expect(minimal[0]).toBe(EVERY_NAME.length);
    // Latency and lead time, 2 target environments, 9 more applications.
    expect((perApplication[1] ?? 0) - (perApplication[0] ?? 0)).toBe(2 * 2 * 9);
  });
});
