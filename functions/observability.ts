import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { readMetricsDetail } from './config.ts';
import { METRICS_NAMESPACE } from './core/metric-names.ts';
import { type MetricsDetail, shapeMetricPoint } from './core/metrics-detail.ts';
import type { MetricPoint, MetricsSink } from './core/ports.ts';

/**
 * The one Logger and one Metrics of a process (Powertools: JSON logs, EMF metrics on stdout,
 * which CloudWatch turns into metrics).
 */
// Powertools lets a constructor option win over POWERTOOLS_SERVICE_NAME: read it here, so
// that each function keeps the name the stack gives it.
const serviceName = process.env.POWERTOOLS_SERVICE_NAME ?? 'pipeline-promoter';

export const logger = new Logger({ serviceName });

/**
 * Powertools warns when two dimension sets of one record share a key; `per-application`'s sets
 * share `Environment` by design, and the warning would be a log line per point.
 */
const SHARED_DIMENSION_WARNING = /is defined as both a dimension set and dimension set/;
const metricsWarnings = {
  debug: () => {},
  info: () => {},
  error: (message: string, ...rest: unknown[]) => logger.error(message, { details: rest }),
  warn: (message: string, ...rest: unknown[]) => {
    if (!SHARED_DIMENSION_WARNING.test(message)) logger.warn(message, { details: rest });
  },
};

/** A Powertools Metrics of the service's namespace (the process has one: `metrics`). */
export const createMetrics = (service: string = serviceName): Metrics =>
  new Metrics({ namespace: METRICS_NAMESPACE, serviceName: service, logger: metricsWarnings });

export const metrics = createMetrics();

/**
 * Writes each point as its own EMF document (Powertools' single metric), because the points of
 * one invocation carry different dimension sets. `metricsDetail` (the stack's setting, in
 * PROMOTER_METRICS_DETAIL) decides which of the point's facts are dimensions; the others are
 * EMF properties of the same record, for the dashboard's Logs Insights queries.
 */
export class PowertoolsMetricsSink implements MetricsSink {
  constructor(
    private readonly detail: MetricsDetail = readMetricsDetail(),
    private readonly target: Metrics = metrics,
  ) {}

  record(point: MetricPoint): void {
    const shaped = shapeMetricPoint(point, this.detail);
    const single = this.target.singleMetric();
    // Exactly the dimension sets of core/metrics-detail.ts: no `service`, which Powertools adds
    // by default and which would make every query and alarm name it.
    single.clearDefaultDimensions();
    for (const set of shaped.dimensionSets) single.addDimensions({ ...set });
    for (const [key, value] of Object.entries(shaped.properties)) single.addMetadata(key, value);
    single.addMetric(shaped.name, shaped.unit, shaped.value);
  }
}
