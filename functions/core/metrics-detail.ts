import { Dimension, Metric } from './metric-names.ts';
import type { MetricPoint, MetricUnit } from './ports.ts';

/**
 * How much of a metric point's facts become CloudWatch dimensions (DESIGN.md section 9, "Priced
 * for the bill"). CloudWatch bills every distinct (name, dimension values) as a custom metric,
 * whatever the traffic, so only bounded facts are dimensions; the others (pipeline, application,
 * revision, PR URL, job id) stay on every EMF record as properties, for Logs Insights.
 * - `minimal`: no dimensions: one custom metric per name, all the alarms need (they sum a name).
 * - `standard` (default): `Environment` (the target) on the two promotion times only, the
 *   dashboard's percentiles by environment; `Outcome` for the webhook requests and `Gate` for
 *   `PromotionsWaiting` (bounded lists); no dimension for every other name, which the dashboard
 *   sums or reads over all environments (by environment and application: the Logs Insights
 *   tables). About 29 custom metrics at 3 environments, never more with pipelines.
 * - `per-application`: `standard`, plus `Application` × `Environment` on the promotion latency
 *   and lead time, for alarms per application (billed per application and environment).
 */
export const METRICS_DETAILS = ['minimal', 'standard', 'per-application'] as const;

export type MetricsDetail = (typeof METRICS_DETAILS)[number];

export const DEFAULT_METRICS_DETAIL: MetricsDetail = 'standard';

export type DimensionName = (typeof Dimension)[keyof typeof Dimension];

/** The dimension keys of one CloudWatch metric (EMF's DimensionSet). */
export type DimensionSet = readonly DimensionName[];

/**
 * The Flux webhook's requests, by outcome (a bounded list): what tells a broken leaf cluster
 * (rejected signatures) from a quiet one. GitHub's and GitLab's deliveries carry no environment
 * and are only counted; their outcomes are EMF properties.
 */
const BY_OUTCOME: ReadonlySet<string> = new Set([Metric.WebhookRequests]);
const WITHOUT_DIMENSIONS: ReadonlySet<string> = new Set([
  Metric.GitHubWebhookRequests,
  Metric.GitLabWebhookRequests,
]);

/** The times that `per-application` also keeps by application, for alarms per application. */
export const PER_APPLICATION_METRICS = [Metric.PromotionLatency, Metric.PromotionLeadTime] as const;
const PER_APPLICATION: ReadonlySet<string> = new Set(PER_APPLICATION_METRICS);

/**
 * The names `standard` keeps by `Environment`: the promotion latency and lead time, whose
 * percentiles differ by target environment and cannot be read from a sum. Each other name by
 * environment would cost one custom metric per environment (about $0.30 a month each) for a
 * view the dashboard sums anyway.
 */
export const BY_ENVIRONMENT_METRICS = PER_APPLICATION_METRICS;
const BY_ENVIRONMENT_NAMES: ReadonlySet<string> = new Set(BY_ENVIRONMENT_METRICS);

const BY_ENVIRONMENT: readonly DimensionSet[] = [[Dimension.Environment]];
const NO_DIMENSION: readonly DimensionSet[] = [[]];

/**
 * The dimension sets a metric is emitted with at a detail: one list for the sink that writes
 * the EMF and for the stack's dashboard and alarms, so that the two cannot drift apart.
 *
 * @example
 * dimensionSetsOf(Metric.PromotionLatency, 'standard'); // [['Environment']]
 * dimensionSetsOf(Metric.PromotionLatency, 'per-application');
 * // [['Environment'], ['Application', 'Environment']]
 * dimensionSetsOf(Metric.WebhookRequests, 'minimal'); // [[]]
 * dimensionSetsOf(Metric.Deployments, 'standard'); // [[]]
 */
export const dimensionSetsOf = (
  metricName: string,
  detail: MetricsDetail,
): readonly DimensionSet[] => {
  if (detail === 'minimal' || WITHOUT_DIMENSIONS.has(metricName)) return NO_DIMENSION;
  if (BY_OUTCOME.has(metricName)) return [[Dimension.Outcome]];
  if (metricName === Metric.PromotionsWaiting) return [[Dimension.Gate]];
  if (detail === 'per-application' && PER_APPLICATION.has(metricName)) {
    return [[Dimension.Environment], [Dimension.Application, Dimension.Environment]];
  }
  return BY_ENVIRONMENT_NAMES.has(metricName) ? BY_ENVIRONMENT : NO_DIMENSION;
};

/** Every metric name the service emits, with its dimension sets at a detail. */
export const emittedDimensionSets = (
  detail: MetricsDetail,
): ReadonlyMap<string, readonly DimensionSet[]> =>
  new Map(Object.values(Metric).map((name) => [name, dimensionSetsOf(name, detail)]));

/** A dimension a point does not carry is written with this value, so that its set stays whole. */
export const MISSING_DIMENSION_VALUE = 'none';

/** A metric point as EMF writes it: its dimension sets with their values, and its properties. */
export interface ShapedMetricPoint {
  readonly name: string;
  readonly unit: MetricUnit;
  readonly value: number;
  /** One entry per dimension set, in the order of `dimensionSetsOf`. */
  readonly dimensionSets: readonly Readonly<Record<string, string>>[];
  /** The point's other facts (dimensions it carries that are no dimension here, metadata). */
  readonly properties: Readonly<Record<string, string>>;
}

/**
 * Decides what of a point's facts are dimensions at a detail and moves the others into its
 * properties: no fact is lost, each EMF record still names its pipeline, application, revision.
 *
 * @example
 * shapeMetricPoint(
 *   { name: 'PromotionLatency', unit: 'Milliseconds', value: 840,
 *     dimensions: { Pipeline: 'flux-system/podinfo', Application: 'podinfo', Environment: 'prod' },
 *     metadata: { revision: '6.5.0' } },
 *   'standard',
 * );
 * // { ..., dimensionSets: [{ Environment: 'prod' }],
 * //   properties: { Pipeline: 'flux-system/podinfo', Application: 'podinfo', revision: '6.5.0' } }
 */
export const shapeMetricPoint = (point: MetricPoint, detail: MetricsDetail): ShapedMetricPoint => {
  const sets = dimensionSetsOf(point.name, detail);
  const used = new Set<string>(sets.flat());
  const dimensionSets = sets.map((set) =>
    Object.fromEntries(
      set.map((key) => [key, nonEmpty(point.dimensions[key]) ?? MISSING_DIMENSION_VALUE]),
    ),
  );
  const properties: Record<string, string> = { ...(point.metadata ?? {}) };
  for (const [key, value] of Object.entries(point.dimensions)) {
    if (!used.has(key)) properties[key] = value;
  }
  return { name: point.name, unit: point.unit, value: point.value, dimensionSets, properties };
};

const nonEmpty = (value: string | undefined): string | undefined =>
  value === undefined || value.trim() === '' ? undefined : value;
