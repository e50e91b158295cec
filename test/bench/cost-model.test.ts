import { readFileSync } from 'node:fs';
import { App } from 'aws-cdk-lib';
import { describe, expect, it } from 'vitest';
import {
  type CfnTemplate,
  customMetricsCost,
  monthlyBill,
  type PriceTable,
  type PromotionMix,
  parsePriceTable,
  type StackFacts,
  scriptMonth,
  stackFactsOf,
} from '../../bench/cost-model.ts';
import { ENV } from '../../functions/config.ts';
import { PipelinePromoterStack } from '../../lib/pipeline-promoter-stack.ts';

/**
 * The cost model's arithmetic on a workload small enough to count by hand: 2 pipelines of 2
 * environments, one promotion an hour each, every promotion updated, merged and deployed.
 */
const PRICES: PriceTable = {
  region: 'test-region-1',
  date: '2026-12-01',
  currency: 'USD',
  lambda: { requestsPerMillion: 0.2, gbSecond: { arm64: 0.00001, x86_64: 0.00002 } },
  sqs: { fifoRequestsPerMillion: 0.5, standardRequestsPerMillion: 0.4 },
  dynamodb: {
    onDemandWriteRequestUnitsPerMillion: 1,
    onDemandReadRequestUnitsPerMillion: 0.25,
    storageGbMonth: 0.25,
  },
  apiGateway: { httpApiRequestsPerMillion: 1 },
  cloudwatch: {
    customMetricsMonthTiers: [
      { upTo: 10_000, price: 0.3 },
      { upTo: null, price: 0.1 },
    ],
    logsIngestionGb: 0.5,
    logsStorageGbMonth: 0.03,
    logsInsightsScannedGb: 0.005,
    dashboardMonth: 3,
    standardAlarmMetricMonth: 0.1,
    metricsInsightsAlarmMetricAnalyzedMonth: 0.1,
  },
  secretsManager: { secretMonth: 0.4, apiCallsPer10k: 0.05 },
  eventBridgeScheduler: { invocationsPerMillion: 1 },
  eventBridge: { customEventsPerMillion: 1 },
  xray: { tracesRecordedPerMillion: 5 },
};

const FACTS: StackFacts = {
  functions: [
    { service: 'pipeline-promoter-webhook', memoryMb: 512, architecture: 'arm64', tracing: true },
    { service: 'pipeline-promoter-worker', memoryMb: 1024, architecture: 'arm64', tracing: true },
    {
      service: 'pipeline-promoter-pipelines-api',
      memoryMb: 512,
      architecture: 'arm64',
      tracing: true,
    },
    { service: 'pipeline-promoter-reconcile', memoryMb: 512, architecture: 'arm64', tracing: true },
  ],
  fifoQueues: 2,
  standardQueues: 0,
  tableOnDemand: true,
  httpApis: 1,
  scheduleMinutes: [60],
  dashboards: 1,
  logQueryWidgets: 3,
  standardAlarms: 3,
  metricsInsightsAlarms: ['PromotionsDeadLettered'],
  logRetentionDays: 30,
  metricsDetail: 'standard',
  eventBuses: 1,
};

const WORKLOAD = { pipelines: 2, environments: 2, promotionsPerDay: 24, secrets: 1 };

const EVERY_ONE_DEPLOYED: PromotionMix = {
  outcomes: { updated: 1 },
  gates: {},
  deployed: 1,
  deploymentFailure: 0,
  staleClosed: 0,
  ignoredPerDeployment: 0,
};

describe('scriptMonth: the custom metrics of a month', () => {
  it('counts by hand: 10 at standard, 21 before issue 15, 9 at minimal, 14 per application', () => {
    // Act
    const month = (policy: Parameters<typeof scriptMonth>[1]) =>
      scriptMonth(WORKLOAD, policy, EVERY_ONE_DEPLOYED);
    const standard = month('standard');

    // Assess
    // One promotion an hour per pipeline, each: 2 Deployments, 2 WebhookRequests (accepted,
    // final-environment), 3 GitHub deliveries, updated, latency, merge time, merge to deploy,
    // lead time, release lead time: 13 points.
    expect(standard.promotions).toBe(2 * 24 * 30);
    expect(standard.points).toBe(2 * 24 * 30 * 13);
    // WebhookRequests ×2 outcomes, GitHubWebhookRequests ×1, Deployments ×1 (no dimension, both
    // envs), latency and lead time of the one target env, and 5 more names without dimension
    // (updated, merge time, merge to deploy, release lead time... ): every one sent every hour.
    expect(standard.distinctMetrics).toBe(10);
    expect(standard.metricMonths).toBe(10);
    // Before: Outcome on GitHub's deliveries (3), and the 8 per-pipeline ones for each pipeline.
    expect(month('today').distinctMetrics).toBe(2 + 3 + 8 * 2);
    expect(month('minimal').distinctMetrics).toBe(9);
    // Latency and lead time by application too: 2 applications each.
    expect(month('per-application').distinctMetrics).toBe(10 + 2 * 2);
  });

  it('standard does not grow with pipelines; before issue 15 it does', () => {
    // Act
    const at = (pipelines: number, policy: 'standard' | 'today') =>
      scriptMonth({ ...WORKLOAD, pipelines }, policy, EVERY_ONE_DEPLOYED).distinctMetrics;

    // Assess
    expect(at(7, 'standard')).toBe(at(2, 'standard'));
    expect(at(7, 'today') - at(2, 'today')).toBe(8 * 5);
  });

  it('standard grows with environments only through the latency and the lead time', () => {
    // Act: 2 environments (1 target) against 4 (3 targets).
    const at = (environments: number) =>
      scriptMonth({ ...WORKLOAD, environments }, 'standard', EVERY_ONE_DEPLOYED).byName;
    const two = at(2);
    const four = at(4);

    // Assess
    expect(four.PromotionLatency).toBe(3);
    expect(four.PromotionLeadTime).toBe(3);
    const others = (byName: Readonly<Record<string, number>>) =>
      Object.entries(byName).filter(
        ([name]) => name !== 'PromotionLatency' && name !== 'PromotionLeadTime',
      );
    expect(others(four)).toEqual(others(two));
  });
});

describe('monthlyBill: each line equals its hand computation', () => {
  it('prices the small workload', () => {
    // Prepare: the usage by hand (ASSUMPTIONS of bench/cost-model.ts).
    const promotions = 2 * 24 * 30; // 1,440
    const deployments = promotions * 2; // each release deploys both envs
    const fluxEvents = deployments * 2;
    const github = promotions * 3;
    const syncs = 2 * 30;
    const sweeps = 720; // hourly
    const openPullRequests = (promotions / 43_200) * 60; // 2
    // The measured promotion without its loopback git waits, plus 6 GitHub requests at 150 ms and
    // 50 ms of AWS calls; cold (879 ms, 389 ms waiting) for 10 % of the jobs.
    const workerSeconds =
      (0.9 * (138 - 126 + 6 * 150 + 50) + 0.1 * (879 - 389 + 6 * 150 + 50)) / 1000;
    const gbSeconds =
      (fluxEvents + github) * 0.05 * 0.5 +
      promotions * workerSeconds * 1 +
      sweeps * ((300 + 10 * openPullRequests) / 1000) * 0.5 +
      syncs * 0.15 * 0.5;
    const invocations = fluxEvents + github + promotions + sweeps + syncs;
    const rate = invocations / 2_592_000;
    const reservoir = 1 - Math.exp(-rate);
    const traces = (reservoir + 0.05 * (rate - reservoir)) * 2_592_000;
    const sqsRequests = promotions * 3 + 5 * (2_592_000 / 20);
    const writes = fluxEvents + deployments * 2 + promotions * 3 + github;
    const reads = fluxEvents + promotions * 2 + github + sweeps;
    const storedGb = (2 * 2 * 4096) / 1024 ** 3;
    const apiRequests = fluxEvents + github + syncs;
    const points = promotions * 13;
    const logGb =
      (invocations * 750 +
        (fluxEvents + github) * 500 +
        promotions * 1800 +
        sweeps * 600 +
        points * 450 +
        apiRequests * 400) /
      1024 ** 3;

    // Act
    const bill = monthlyBill(FACTS, WORKLOAD, PRICES, EVERY_ONE_DEPLOYED);
    const line = (service: string) => bill.lines.find((each) => each.service === service)?.monthly;

    // Assess
    expect(workerSeconds).toBeCloseTo(1.0098, 9);
    expect(gbSeconds).toBeCloseTo(1825.812, 6);
    expect(line('Lambda')).toBeCloseTo((invocations / 1e6) * 0.2 + gbSeconds * 0.00001, 9);
    expect(line('X-Ray')).toBeCloseTo((traces / 1e6) * 5, 9);
    expect(line('SQS')).toBeCloseTo((sqsRequests / 1e6) * 0.5, 9);
    expect(line('DynamoDB')).toBeCloseTo(
      (writes / 1e6) * 1 + (reads / 1e6) * 0.25 + storedGb * 0.25,
      9,
    );
    expect(line('API Gateway')).toBeCloseTo(apiRequests / 1e6, 9);
    expect(line('CloudWatch metrics')).toBeCloseTo(10 * 0.3, 9);
    expect(line('CloudWatch Logs')).toBeCloseTo(
      logGb * 0.5 + logGb * 0.15 * 0.03 + 3 * 10 * logGb * 0.005,
      9,
    );
    expect(line('CloudWatch dashboard')).toBe(3);
    // Three standard alarms, and the Metrics Insights one over at least one metric.
    expect(line('CloudWatch alarms')).toBeCloseTo(0.4, 9);
    expect(line('EventBridge Scheduler')).toBeCloseTo(720 / 1e6, 9);
    expect(line('EventBridge')).toBeCloseTo((promotions * 4) / 1e6, 9);
    expect(line('Secrets Manager')).toBeCloseTo(0.4 + (invocations / 1e4) * 0.05, 9);
    const sum = bill.lines.reduce((total, each) => total + each.monthly, 0);
    expect(bill.total).toBeCloseTo(sum, 9);
    expect(bill.totalExcludingSecrets).toBeCloseTo(sum - (line('Secrets Manager') ?? 0), 9);
  });

  it('bills custom metrics by tier', () => {
    // Act
    const cost = customMetricsCost(12_000, PRICES);

    // Assess
    expect(cost).toBeCloseTo(10_000 * 0.3 + 2_000 * 0.1, 9);
    expect(customMetricsCost(0, PRICES)).toBe(0);
  });

  it('refuses a price table without a date, naming the field', () => {
    // Act
    const parse = () => parsePriceTable({ ...PRICES, date: 'last week' }, 'prices.json');

    // Assess
    expect(parse).toThrow(/invalid price table prices\.json: date: expected the date/);
    const shipped = JSON.parse(
      readFileSync(new URL('../../bench/prices/aws-us-east-1.json', import.meta.url), 'utf8'),
    ) as unknown;
    expect(parsePriceTable(shipped, 'aws-us-east-1.json').region).toBe('us-east-1');
  });
});

describe('stackFactsOf: what the bill reads from the synthesised template', () => {
  it('reads the functions, queues, schedule, alarms, dashboard and metrics detail', () => {
    // Prepare
    const context = (
      JSON.parse(readFileSync(new URL('../../cdk.json', import.meta.url), 'utf8')) as {
        context: Record<string, unknown>;
      }
    ).context;
    const app = new App({ context: { ...context, 'aws:cdk:bundling-stacks': [] } });
    const stack = new PipelinePromoterStack(app, 'Cost', { metricsDetail: 'minimal' });
    const template = app.synth().getStackArtifact(stack.artifactId).template as CfnTemplate;

    // Act
    const facts = stackFactsOf(template, ENV.metricsDetail);

    // Assess
    expect(facts).toMatchObject({
      fifoQueues: 2,
      standardQueues: 0,
      tableOnDemand: true,
      httpApis: 1,
      scheduleMinutes: [5],
      dashboards: 1,
      logQueryWidgets: 3,
      standardAlarms: 3,
      metricsInsightsAlarms: ['PromotionsDeadLettered'],
      logRetentionDays: 30,
      metricsDetail: 'minimal',
      eventBuses: 1,
    });
    expect(facts.functions).toHaveLength(4);
    expect(facts.functions).toContainEqual({
      service: expect.stringContaining('worker'),
      memoryMb: 1769,
      architecture: 'arm64',
      tracing: false,
    });
  });
});
