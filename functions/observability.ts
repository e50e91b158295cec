import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { METRICS_NAMESPACE } from './core/metric-names.ts';
import type { MetricPoint, MetricsSink } from './core/ports.ts';

/**
 * The one Logger and one Metrics of a process (Powertools: JSON logs, EMF metrics on stdout,
 * which CloudWatch turns into metrics). POWERTOOLS_* variables override these defaults.
 */
export const SERVICE_NAME = 'pipeline-promoter';

export const logger = new Logger({ serviceName: SERVICE_NAME });

export const metrics = new Metrics({ namespace: METRICS_NAMESPACE, serviceName: SERVICE_NAME });

/**
 * Each point is written as its own EMF document (Powertools' single metric), because the
 * points of one invocation carry different dimension sets.
 */
export class PowertoolsMetricsSink implements MetricsSink {
  constructor(private readonly target: Metrics = metrics) {}

  record(point: MetricPoint): void {
    const single = this.target.singleMetric();
    single.addDimensions({ ...point.dimensions });
    for (const [key, value] of Object.entries(point.metadata ?? {})) single.addMetadata(key, value);
    single.addMetric(point.name, point.unit, point.value);
  }
}
