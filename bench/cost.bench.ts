import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { App } from 'aws-cdk-lib';
import { ENV } from '../functions/config.ts';
import { METRICS_DETAILS, type MetricsDetail } from '../functions/core/metrics-detail.ts';
import { PipelinePromoterStack, settingsFromContext } from '../lib/pipeline-promoter-stack.ts';
import {
  ASSUMPTIONS,
  type Bill,
  type CfnTemplate,
  customMetricsCost,
  MEASURED_PROMOTION,
  type MetricsPolicy,
  monthlyBill,
  type PriceTable,
  parsePriceTable,
  parseWorkload,
  type StackFacts,
  scriptMonth,
  stackFactsOf,
  type Workload,
  workerJobMs,
} from './cost-model.ts';

/**
 * What Pipeline Promoter costs a month (issue 15):
 *
 *   npm run bench -- cost [--pipelines 200 --environments 3 --promotions-per-day 50 --secrets 2]
 *     [--metrics-detail standard] [--context tracing=false ...]
 *     [--template cdk.out/PipelinePromoter.template.json]
 *     [--prices bench/prices/aws-us-east-1.json]
 *
 * Synthesises the stack in-process (cdk.json's context, no bundling: works on a fresh clone),
 * or reads `--template`; prices the workload per service; shows how each line grows with
 * pipelines and with promotions; and counts the custom metrics of a scripted month of 200
 * pipelines × 3 environments under the design before issue 15 (every fact a dimension) and
 * under each `metricsDetail`. `--promotions-per-day` is per pipeline.
 */
const { values } = parseArgs({
  options: {
    pipelines: { type: 'string', default: '200' },
    environments: { type: 'string', default: '3' },
    'promotions-per-day': { type: 'string', default: '50' },
    secrets: { type: 'string', default: '2' },
    'metrics-detail': { type: 'string' },
    template: { type: 'string' },
    /** A stack setting for the in-process synth, `key=value`, like `cdk synth -c`. */
    context: { type: 'string', multiple: true, default: [] },
    prices: { type: 'string', default: 'bench/prices/aws-us-east-1.json' },
  },
});

const workload = parseWorkload({
  pipelines: Number(values.pipelines),
  environments: Number(values.environments),
  promotionsPerDay: Number(values['promotions-per-day']),
  secrets: Number(values.secrets),
});
const detailOption = values['metrics-detail'];
if (detailOption !== undefined && !METRICS_DETAILS.includes(detailOption as MetricsDetail)) {
  throw new Error(`--metrics-detail: expected one of ${METRICS_DETAILS.join(', ')}`);
}
const pricesPath = values.prices;
const prices: PriceTable = parsePriceTable(
  JSON.parse(readFileSync(pricesPath, 'utf8')) as unknown,
  pricesPath,
);

const synthesise = (metricsDetail: string | undefined): CfnTemplate => {
  const cdkJson = JSON.parse(readFileSync(new URL('../cdk.json', import.meta.url), 'utf8')) as {
    context: Record<string, unknown>;
  };
  const app = new App({
    context: {
      ...cdkJson.context,
      ...Object.fromEntries(
        (values.context ?? []).map((pair) => {
          const at = pair.indexOf('=');
          if (at < 1) throw new Error(`--context: expected key=value, got ${pair}`);
          return [pair.slice(0, at), pair.slice(at + 1)];
        }),
      ),
      ...(metricsDetail === undefined ? {} : { metricsDetail }),
      'aws:cdk:bundling-stacks': [],
    },
  });
  const stack = new PipelinePromoterStack(app, 'PipelinePromoter', settingsFromContext(app.node));
  return app.synth().getStackArtifact(stack.artifactId).template as CfnTemplate;
};

const template: CfnTemplate =
  values.template === undefined
    ? synthesise(detailOption)
    : (JSON.parse(readFileSync(values.template, 'utf8')) as CfnTemplate);
const facts: StackFacts = stackFactsOf(template, ENV.metricsDetail);

const money = (value: number): string => `$${value.toFixed(2)}`;
const signed = (change: number): string =>
  Math.abs(change) < 0.005 ? '—' : `${change > 0 ? '+' : '−'}${money(Math.abs(change))}`;
const thousands = (value: number): string => Math.round(value).toLocaleString('en-US');
const pad = (text: string, width: number) => text.padEnd(width);
const lpad = (text: string, width: number) => text.padStart(width);

const bill = monthlyBill(facts, workload, prices);
// Growth: twice the pipelines with the same promotions (each pipeline promotes half as often),
// and twice the promotions on the same pipelines.
const morePipelines = monthlyBill(
  facts,
  {
    ...workload,
    pipelines: workload.pipelines * 2,
    promotionsPerDay: workload.promotionsPerDay / 2,
  },
  prices,
);
const morePromotions = monthlyBill(
  facts,
  { ...workload, promotionsPerDay: workload.promotionsPerDay * 2 },
  prices,
);
const delta = (other: Bill, index: number): string => {
  return signed((other.lines[index]?.monthly ?? 0) - (bill.lines[index]?.monthly ?? 0));
};

const fns = facts.functions
  .map((fn) => `${fn.service.replace(/^pipeline-promoter-?/, '') || 'service'} ${fn.memoryMb} MB`)
  .join(', ');
console.log(
  `Prices: ${pricesPath} (${prices.region}, ${prices.date}, ${prices.currency}, no free tier)`,
);
console.log(
  `Template: ${values.template ?? 'synthesised in-process'}: ${facts.functions.length} functions (${facts.functions[0]?.architecture}; ${fns}), ${facts.fifoQueues} FIFO + ${facts.standardQueues} standard queues, DynamoDB ${facts.tableOnDemand ? 'on-demand' : 'provisioned'}, ${facts.httpApis} HTTP API, schedule every ${facts.scheduleMinutes.join(', ')} min, ${facts.dashboards} dashboard (${facts.logQueryWidgets} Logs Insights widgets), ${facts.standardAlarms + facts.metricsInsightsAlarms.length} alarms, logs kept ${facts.logRetentionDays} days, X-Ray tracing ${facts.functions.some((fn) => fn.tracing) ? 'on' : 'off'}, metricsDetail ${facts.metricsDetail}`,
);
console.log(
  `Workload: ${thousands(workload.pipelines)} pipelines × ${workload.environments} environments, ${workload.promotionsPerDay} promotions a day each (${thousands(bill.promotionsPerMonth)} a month), ${workload.secrets} secrets`,
);
console.log('');
const widths = [22, 50, 9, 14, 14];
console.log(
  [
    pad('service', widths[0] ?? 0),
    pad('usage a month', widths[1] ?? 0),
    lpad('$/month', widths[2] ?? 0),
    lpad('×2 pipelines*', widths[3] ?? 0),
    lpad('×2 promotions', widths[4] ?? 0),
  ].join(' '),
);
bill.lines.forEach((line, index) => {
  console.log(
    [
      pad(line.service, widths[0] ?? 0),
      pad(line.usage, widths[1] ?? 0),
      lpad(money(line.monthly), widths[2] ?? 0),
      lpad(delta(morePipelines, index), widths[3] ?? 0),
      lpad(delta(morePromotions, index), widths[4] ?? 0),
    ].join(' '),
  );
});
const totals = (label: string, pick: (value: Bill) => number) =>
  console.log(
    [
      pad(label, (widths[0] ?? 0) + (widths[1] ?? 0) + 1),
      lpad(money(pick(bill)), widths[2] ?? 0),
      lpad(signed(pick(morePipelines) - pick(bill)), widths[3] ?? 0),
      lpad(signed(pick(morePromotions) - pick(bill)), widths[4] ?? 0),
    ].join(' '),
  );
totals('Total, secrets excluded', (value) => value.totalExcludingSecrets);
totals('Total', (value) => value.total);
console.log(
  '* twice the pipelines with the same promotions a month (each promotes half as often).',
);
const m = MEASURED_PROMOTION;
const a = ASSUMPTIONS;
console.log(
  `Worker: ${workerJobMs().toFixed(0)} ms a job. Measured by \`${m.command}\` (${m.date}, ${m.machine}, ${m.repository}, loopback git server): warm median ${m.warmMs} ms, of which ${m.warmGitRequestsMs} ms waiting on its 4 git requests; cold median ${m.coldMs} ms (${m.coldGitRequestsMs} ms waiting). Margin (assumed, not measured): the loopback waits replaced by ${a.remoteRequestsPerJob} requests to GitHub at ${a.remoteRequestMs} ms each, ${a.workerAwsCallsMs} ms of AWS calls, ${(a.workerColdShare * 100).toFixed(0)} % of jobs cold.`,
);
console.log(
  `Assumptions (bench/cost-model.ts ASSUMPTIONS): webhook ${a.webhookMs} ms, ${a.fluxEventsPerDeployment} Flux events a deployment, ${a.githubDeliveriesPerPromotion} GitHub deliveries a promotion, ${a.dashboardViewsPerDay} dashboard views a day. Free tiers are not counted (an account may have spent them): among them, an account's first 3 dashboards cost nothing.`,
);

// The comparison: custom metrics of a scripted month, before issue 15 and now.
const compare = (size: Workload) => {
  const policies: readonly MetricsPolicy[] = ['today', ...METRICS_DETAILS];
  const months = policies.map((policy) => scriptMonth(size, policy));
  const before = months[0];
  console.log('');
  console.log(
    `Custom metrics of a scripted month, ${thousands(size.pipelines)} pipelines × ${size.environments} environments, ${size.promotionsPerDay} promotions a day each (${thousands(before?.promotions ?? 0)} promotions, ${thousands(before?.points ?? 0)} points):`,
  );
  console.log(
    [
      pad('design', 34),
      lpad('distinct metrics', 17),
      lpad('metric-months', 14),
      lpad('$/month', 10),
      lpad('fewer', 8),
      lpad('cheaper', 9),
    ].join(' '),
  );
  for (const month of months) {
    const cost = customMetricsCost(month.metricMonths, prices);
    const beforeCost = customMetricsCost(before?.metricMonths ?? 0, prices);
    const label =
      month.policy === 'today'
        ? 'before (every fact a dimension)'
        : `metricsDetail ${month.policy}${month.policy === 'standard' ? ' (default)' : ''}`;
    console.log(
      [
        pad(label, 34),
        lpad(thousands(month.distinctMetrics), 17),
        lpad(month.metricMonths.toFixed(1), 14),
        lpad(money(cost), 10),
        lpad(`${((before?.distinctMetrics ?? 0) / month.distinctMetrics).toFixed(1)}x`, 8),
        lpad(`${(beforeCost / cost).toFixed(1)}x`, 9),
      ].join(' '),
    );
  }
  return months;
};

const reference = { pipelines: 200, environments: 3, promotionsPerDay: 50, secrets: 0 };
const sameAsReference =
  workload.pipelines === reference.pipelines &&
  workload.environments === reference.environments &&
  workload.promotionsPerDay === reference.promotionsPerDay;
if (!sameAsReference) compare(workload);
const months = compare({ ...reference, promotionsPerDay: workload.promotionsPerDay });

// The targets of issue 15, at 200 pipelines × 3 environments.
const standard = months.find((month) => month.policy === 'standard');
const before = months.find((month) => month.policy === 'today');
const fewer = (before?.distinctMetrics ?? 0) / (standard?.distinctMetrics ?? 1);
const small = scriptMonth({ ...reference, pipelines: 20 }, 'standard');
const referenceBill = monthlyBill({ ...facts, metricsDetail: 'standard' }, reference, prices);
const checks = [
  [
    `standard: custom metrics do not grow with pipelines (20: ${small.distinctMetrics}, 200: ${standard?.distinctMetrics})`,
    small.distinctMetrics === standard?.distinctMetrics,
  ],
  [
    `standard: ${fewer.toFixed(1)}x fewer custom metrics than before at 200 pipelines (>= 20x)`,
    fewer >= 20,
  ],
  [
    `200 pipelines × 3 environments × 50 promotions a day: ${money(referenceBill.totalExcludingSecrets)} a month, secrets excluded (< $25)`,
    referenceBill.totalExcludingSecrets < 25,
  ],
] as const;
console.log('');
for (const [text, ok] of checks) console.log(`${ok ? 'ok  ' : 'FAIL'} ${text}`);
process.exitCode = checks.every(([, ok]) => ok) ? 0 : 1;
