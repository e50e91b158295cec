import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { METRICS_NAMESPACE } from './core/metric-names.ts';
import type { MetricPoint, MetricsSink } from './core/ports.ts';

/**
 * The one Logger and one Metrics of a process (Powertools: JSON logs, EMF metrics on stdout,
 * which CloudWatch turns into metrics).
 */
// Powertools lets a constructor option win over POWERTOOLS_SERVICE_NAME: read it here, so
// that each function keeps the name the stack gives it.
const serviceName = process.env.POWERTOOLS_SERVICE_NAME ?? 'pipeline-promoter';

export const logger = new Logger({ serviceName });

export const metrics = new Metrics({ namespace: METRICS_NAMESPACE, serviceName });

/**
 * Each point is written as its own EMF document (Powertools' single metric), because the
 * points of one invocation carry different dimension sets.
 */
export class PowertoolsMetricsSink implements MetricsSink {
  constructor(private readonly target: Metrics = metrics) {}

  record(point: MetricPoint): void {
    const single = this.target.singleMetric();
    // Exactly the dimensions of DESIGN.md section 9: no `service`, which Powertools adds by
    // default and which would make every query and alarm name it.
    single.clearDefaultDimensions();
    single.addDimensions({ ...point.dimensions });
    for (const [key, value] of Object.entries(point.metadata ?? {})) single.addMetadata(key, value);
    single.addMetric(point.name, point.unit, point.value);
  }
}
