import { describe, expect, it } from 'vitest';
import { Metric } from '../../functions/core/metric-names.ts';
import {
  dimensionSetsOf,
  emittedDimensionSets,
  METRICS_DETAILS,
  MISSING_DIMENSION_VALUE,
  shapeMetricPoint,
} from '../../functions/core/metrics-detail.ts';
import type { MetricPoint } from '../../functions/core/ports.ts';

const latency: MetricPoint = {
  name: Metric.PromotionLatency,
  unit: 'Milliseconds',
  value: 840,
  dimensions: { Pipeline: 'flux-system/podinfo', Application: 'podinfo', Environment: 'prod' },
  metadata: { revision: '6.5.0', jobId: 'j-1' },
};

describe('shapeMetricPoint: which facts are dimensions, the others EMF properties', () => {
  it('standard: Environment is the dimension; pipeline, application and metadata are properties', () => {
    // Act
    const shaped = shapeMetricPoint(latency, 'standard');

    // Assess
    expect(shaped).toEqual({
      name: Metric.PromotionLatency,
      unit: 'Milliseconds',
      value: 840,
      dimensionSets: [{ Environment: 'prod' }],
      properties: {
        Pipeline: 'flux-system/podinfo',
        Application: 'podinfo',
        revision: '6.5.0',
        jobId: 'j-1',
      },
    });
  });

  it('per-application: the latency also by Application and Environment', () => {
    // Act
    const shaped = shapeMetricPoint(latency, 'per-application');

    // Assess
    expect(shaped.dimensionSets).toEqual([
      { Environment: 'prod' },
      { Application: 'podinfo', Environment: 'prod' },
    ]);
    expect(shaped.properties).toEqual({
      Pipeline: 'flux-system/podinfo',
      revision: '6.5.0',
      jobId: 'j-1',
    });
  });

  it('minimal: one dimensionless set, every fact a property', () => {
    // Act
    const shaped = shapeMetricPoint(latency, 'minimal');

    // Assess
    expect(shaped.dimensionSets).toEqual([{}]);
    expect(shaped.properties).toMatchObject({
      Environment: 'prod',
      Pipeline: 'flux-system/podinfo',
    });
  });

  it('a point without a dimension of its set gets the placeholder value, not another set', () => {
    // Act
    const shaped = shapeMetricPoint(
      { name: Metric.PromotionLatency, unit: 'Milliseconds', value: 1, dimensions: {} },
      'standard',
    );

    // Assess
    expect(shaped.dimensionSets).toEqual([{ Environment: MISSING_DIMENSION_VALUE }]);
  });
});

describe('dimensionSetsOf: the one list of the code and the stack', () => {
  it('standard: Environment on the two promotion times, Outcome for webhook requests, Gate for waiting, else none', () => {
    // Act
    const sets = emittedDimensionSets('standard');

    // Assess
    expect(sets.get(Metric.WebhookRequests)).toEqual([['Outcome']]);
    expect(sets.get(Metric.GitHubWebhookRequests)).toEqual([[]]);
    expect(sets.get(Metric.GitLabWebhookRequests)).toEqual([[]]);
    expect(sets.get(Metric.PromotionsWaiting)).toEqual([['Gate']]);
    expect(sets.get(Metric.PromotionLatency)).toEqual([['Environment']]);
    expect(sets.get(Metric.PromotionLeadTime)).toEqual([['Environment']]);
    const others = [...sets].filter(
      ([name]) =>
        ![
          Metric.WebhookRequests,
          Metric.PromotionsWaiting,
          Metric.PromotionLatency,
          Metric.PromotionLeadTime,
        ].includes(name as never),
    );
    expect(others.length).toBeGreaterThan(10);
    for (const [name, value] of others) expect(value, name).toEqual([[]]);
  });

  it('no detail ever makes Pipeline a dimension', () => {
    // Act
    const keys = METRICS_DETAILS.flatMap((detail) =>
      Object.values(Metric).flatMap((name) => dimensionSetsOf(name, detail).flat()),
    );

    // Assess
    expect(new Set(keys)).toEqual(new Set(['Environment', 'Outcome', 'Gate', 'Application']));
  });
});
