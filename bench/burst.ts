import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import {
  type Answer,
  BURST_FAULTS,
  type BurstReport,
  burstPipelines,
  type Delivery,
  deliver,
  faultSchedule,
  faultsAnswered,
  moveBaseDuringNextPush,
  outage,
  planRound,
  type ServeProcess,
  startBurstWorld,
  verifyBurst,
  waitForDrain,
} from '../test/support/burst-scenario.ts';

/**
 * Issue 8's burst at full size against a real `promoter serve` (test/support/burst-scenario.ts,
 * the scenario test/integration/durability.test.ts runs small): 1,000 signed events over 50
 * pipelines with every kind of fault and a commit on a base branch mid-burst, then a round with
 * an outage, then a round with `kill -9` and a restart. Prints, per round, what was accepted, how
 * many PRs ended exact, dead letters, environments rolled back, and the drain time (first event
 * sent to the last job ended). Exits 1 when a promise was broken.
 *
 *   npm run burst [-- --pipelines 50 --events 1000 --retry-unit-ms 5 --seed 8]
 */
const { values } = parseArgs({
  options: {
    pipelines: { type: 'string', default: '50' },
    events: { type: 'string', default: '1000' },
    'retry-unit-ms': { type: 'string', default: '5' },
    seed: { type: 'string', default: '8' },
    /** Writes every serve log line there, one JSON a line. */
    log: { type: 'string' },
  },
});
const pipelineCount = Number(values.pipelines);
const perPipeline = Math.max(5, Math.round(Number(values.events) / pipelineCount));
const retryUnitMs = Number(values['retry-unit-ms']);
const seed = Number(values.seed);

// Of each pipeline's events: 40 % into staging, 30 % into prod, 20 % Flux retries, 10 % late.
const share = (fraction: number): number => Math.max(1, Math.round(perPipeline * fraction));
const plan = {
  staging: share(0.4),
  prod: share(0.3),
  retries: share(0.2),
  late: Math.max(0, perPipeline - share(0.4) - share(0.3) - share(0.2)),
};

const pipelines = burstPipelines(pipelineCount);
const world = await startBurstWorld({ pipelines, retryUnitMs });
const serves: ServeProcess[] = [await world.startServe()];
const current = (): ServeProcess => serves[serves.length - 1] as ServeProcess;
const answers: Answer[] = [];

interface Row {
  readonly round: string;
  readonly sent: number;
  /** This round's 202 answers and distinct jobs. */
  readonly accepted: number;
  readonly jobs: number;
  readonly faults: number;
  readonly drainMs: number;
  /** The state after the round, over every round so far. */
  readonly report: BurstReport;
}
const rows: Row[] = [];
const notes: string[] = [];

/** Runs one round: `run` delivers it and resolves with its answers and the faults it met. */
const round = async (
  name: string,
  index: number,
  run: (deliveries: Delivery[]) => Promise<{ answers: Answer[]; faults?: number }>,
): Promise<void> => {
  const deliveries = planRound(world, pipelines, { round: index, ...plan, seed: seed + index });
  const started = performance.now();
  const ran = await run(deliveries);
  answers.push(...ran.answers);
  await waitForDrain(world, answers, serves, 600_000);
  const drainMs = performance.now() - started;
  const faults =
    ran.faults ?? Object.values(faultsAnswered(world.proxy)).reduce((a, b) => a + b, 0);
  world.proxy.reset();
  rows.push({
    round: name,
    sent: deliveries.length,
    accepted: ran.answers.filter((answer) => answer.status === 202).length,
    jobs: new Set(ran.answers.flatMap((answer) => answer.jobId ?? [])).size,
    faults,
    drainMs,
    report: await verifyBurst(world, current().url, answers, pipelines),
  });
};

try {
  await round('burst with faults', 0, async (deliveries) => {
    const copies = Math.max(1, Math.round(deliveries.length / 100));
    const schedule = faultSchedule(deliveries.length, copies);
    const answered = await deliver(current().url, deliveries, {
      concurrency: 16,
      before: (index) => {
        for (const rule of schedule.get(index) ?? []) world.proxy.inject(rule);
        if (index === Math.floor(deliveries.length / 2)) void moveBaseDuringNextPush(world);
      },
    });
    return { answers: answered };
  });

  await round('outage (200 s of the schedule)', 1, async (deliveries) => {
    let down: Promise<number> | undefined;
    const answered = await deliver(current().url, deliveries, {
      concurrency: 16,
      before: (index) => {
        if (index === Math.floor(deliveries.length / 3)) {
          down = outage(world.proxy, 200 * retryUnitMs);
        }
      },
    });
    return { answers: answered, faults: (await down) ?? 0 };
  });

  await round('kill -9 mid-burst, restart', 2, async (deliveries) => {
    const burst = deliveries.filter((item) => item.kind !== 'late');
    const late = deliveries.filter((item) => item.kind === 'late');
    let accepted = 0;
    let kill: Promise<void> | undefined;
    const killed = current();
    const first = await deliver(killed.url, burst, {
      concurrency: 16,
      after: (answer) => {
        if (answer.status === 202) accepted += 1;
        if (accepted >= burst.length / 2 && kill === undefined) kill = killed.kill9();
      },
    });
    await kill;
    serves.push(await world.startServe());
    const unanswered = first.filter((answer) => answer.status === undefined);
    const again = await deliver(
      current().url,
      unanswered.map((answer) => answer.delivery),
      { concurrency: 16 },
    );
    const older = await deliver(current().url, late, { concurrency: 16 });
    notes.push(
      `kill -9 once ${accepted} of ${burst.length} were answered 202; ${unanswered.length} got no answer and were delivered again; the restart resumed ${current().queuedAtStart} queued jobs; then ${late.length} late older events`,
    );
    return { answers: [...first, ...again, ...older] };
  });
} finally {
  await current()
    .stop()
    .catch(() => undefined);
  if (values.log !== undefined) {
    await writeFile(values.log, world.logs.map((line) => `${JSON.stringify(line)}\n`).join(''));
  }
  await world.close();
}

console.log(
  `${pipelineCount} pipelines (${pipelineCount * 2} environments), ${perPipeline} events each a round, ` +
    `retry unit ${retryUnitMs} ms, seed ${seed}, ${BURST_FAULTS.length} fault kinds\n`,
);
console.log(
  '| round | sent | accepted (202) | jobs | faults met | PRs exact | dead letters | rolled back | unfinished | drain |',
);
console.log('|---|---|---|---|---|---|---|---|---|---|');
for (const { round: name, sent, accepted, jobs, faults, drainMs, report } of rows) {
  console.log(
    `| ${name} | ${sent} | ${accepted} | ${jobs} | ${faults} | ${report.exact}/${report.environments} | ${report.deadLetters} | ${report.rolledBack} | ${report.unfinished.length} | ${(drainMs / 1000).toFixed(1)} s |`,
  );
}
for (const note of notes) console.log(`\n${note}`);
const deadLetters = new Map<string, number>();
for (const line of world.logs.filter((entry) => entry.message === 'promotion dead-lettered')) {
  const why = `${line.code}: ${String(line.reason).replace(/127\.0\.0\.1:\d+/g, 'HOST')}`;
  deadLetters.set(why, (deadLetters.get(why) ?? 0) + 1);
}
for (const [why, count] of deadLetters) console.log(`\n${count} dead-lettered: ${why}`);
const problems = rows.flatMap((row) => row.report.problems.map((line) => `${row.round}: ${line}`));
if (problems.length > 0) {
  console.log(`\n${problems.length} broken promises:\n${problems.slice(0, 50).join('\n')}`);
}
process.exit(problems.length === 0 ? 0 : 1);
