import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Answer,
  BURST_FAULTS,
  type BurstWorld,
  burstPipelines,
  deliver,
  faultSchedule,
  faultsAnswered,
  moveBaseDuringNextPush,
  OWNER,
  outage,
  pipelineStatus,
  planRound,
  type ServeProcess,
  startBurstWorld,
  targetsOf,
  verifyBurst,
  waitFor,
  waitForDrain,
} from '../support/burst-scenario.ts';

/**
 * Issue 8's promises held by a real `promoter serve` process (DESIGN.md 5, 6, 7.9-7.10 and 12),
 * with the fake GitHub Enterprise Server behind a fault-injecting proxy for both the API and
 * git: a burst with faults, an outage, `kill -9` mid-burst and a restart, and a dead letter.
 * The phases run in order on the same servers, each round's revisions newer than the last.
 *
 * serve runs its retry schedule (30 s × 2^(n−1), 5 receives) at 5 ms a second: faults that go
 * through the queue cost 150-300 ms; those Octokit and the git reads retry in process cost
 * their real 250 ms-1 s.
 */
const RETRY_UNIT_MS = 5;
/** A safety net for a hung run (the drain waits up to 120 s), not a measure of speed. */
const TEST_TIMEOUT_MS = 180_000;
const PIPELINES = burstPipelines(10);
/** A pipeline whose repository never heals, outside the burst's counts. */
const STUCK = 'stuck';

let world: BurstWorld;
let serve: ServeProcess;
const serves: ServeProcess[] = [];
/** Every answer of every round: the newest accepted revision per env is taken over all of them. */
const answers: Answer[] = [];

const startServe = async (): Promise<ServeProcess> => {
  serve = await world.startServe();
  serves.push(serve);
  return serve;
};

beforeAll(async () => {
  world = await startBurstWorld({ pipelines: [...PIPELINES, STUCK], retryUnitMs: RETRY_UNIT_MS });
  await startServe();
}, 60_000);

afterAll(async () => {
  await world?.close();
});

describe('promoter serve under faults, outages and kill -9 (issue 8)', () => {
  it(
    'a burst of 130 signed events with faults ends in one exact PR per env, never rolled back',
    async () => {
      // Prepare: per pipeline 4 revisions into staging and 3 into prod (each reported by both
      // staging targets, as the gate `all` needs), each target's newest sent before the one just
      // older, 2 Flux retries and 1 late older event; every kind of fault spread over the burst,
      // and a commit on a repository's main during a push.
      const deliveries = planRound(world, PIPELINES, {
        round: 0,
        staging: 4,
        prod: 3,
        retries: 2,
        late: 1,
        seed: 8,
      });
      const schedule = faultSchedule(deliveries.length, 1);
      let baseMoved: Promise<string> | undefined;

      // Act
      const round = await deliver(serve.url, deliveries, {
        concurrency: 6,
        before: (index) => {
          for (const rule of schedule.get(index) ?? []) world.proxy.inject(rule);
          if (index === Math.floor(deliveries.length / 2))
            baseMoved = moveBaseDuringNextPush(world);
        },
      });
      answers.push(...round);
      await waitForDrain(world, answers, serves);

      // Assess
      expect(deliveries).toHaveLength(130);
      expect(round.map((answer) => answer.status)).toEqual(deliveries.map(() => 202));
      // Some 202s promote nothing yet: the gate waits for the other staging target (verifyBurst
      // checks that no 202 waits for anything else).
      expect(round.some((answer) => answer.jobId === undefined)).toBe(true);
      expect(world.proxy.pending()).toBe(0);
      expect(Object.values(faultsAnswered(world.proxy)).reduce((a, b) => a + b, 0)).toBe(
        BURST_FAULTS.length,
      );
      const moved = await baseMoved;
      expect(PIPELINES.flatMap(targetsOf).map((target) => target.repo)).toContain(moved);
      const report = await verifyBurst(world, serve.url, answers, PIPELINES);
      expect(report.problems).toEqual([]);
      expect(report).toMatchObject({ exact: 20, environments: 20, rolledBack: 0, deadLetters: 0 });
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'an outage of 200 s of the retry schedule ends with every PR exact and no dead letter',
    async () => {
      // Prepare: a newer round; once a third of it is in, everything behind the proxy answers 503
      // for 200 schedule-seconds: past the first two backoffs (30 s, 60 s), within the 450 s that
      // 5 receives span.
      world.proxy.reset();
      const logsBefore = world.logs.length;
      const deliveries = planRound(world, PIPELINES, {
        round: 1,
        staging: 2,
        prod: 2,
        retries: 1,
        late: 0,
        seed: 20,
      });
      let down: Promise<number> | undefined;

      // Act
      const round = await deliver(serve.url, deliveries, {
        concurrency: 4,
        before: (index) => {
          if (index === Math.floor(deliveries.length / 3)) {
            down = outage(world.proxy, 200 * RETRY_UNIT_MS);
          }
        },
      });
      answers.push(...round);
      const met = await down;
      await waitForDrain(world, answers, serves);

      // Assess
      expect(round.map((answer) => answer.status)).toEqual(deliveries.map(() => 202));
      expect(met).toBeGreaterThan(0);
      const retried = world.logs
        .slice(logsBefore)
        .filter((line) => line.message === 'promotion will be retried');
      // The outage met the round's work (met > 0). Git reads and GitHub calls retry a 503 in
      // process first, so whether a job also went back to the queue depends on the timing under
      // load: when one did, it was for the outage.
      expect(retried.every((line) => String(line.reason).includes('503'))).toBe(true);
      const report = await verifyBurst(world, serve.url, answers, PIPELINES);
      expect(report.problems).toEqual([]);
      expect(report).toMatchObject({ exact: 20, rolledBack: 0, deadLetters: 0 });
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'kill -9 mid-burst loses nothing answered 202, and late older events roll nothing back',
    async () => {
      // Prepare: a newer round, its late older events held back until after the restart.
      const planned = planRound(world, PIPELINES, {
        round: 2,
        staging: 3,
        prod: 2,
        retries: 1,
        late: 2,
        seed: 99,
      });
      const burst = planned.filter((item) => item.kind !== 'late');
      const late = planned.filter((item) => item.kind === 'late');
      const killed = serve;
      let accepted = 0;
      let kill: Promise<void> | undefined;

      // Act: kill -9 once half the burst is answered 202; Flux delivers again what got no answer.
      const first = await deliver(killed.url, burst, {
        concurrency: 4,
        after: (answer) => {
          if (answer.status === 202) accepted += 1;
          if (accepted >= burst.length / 2 && kill === undefined) kill = killed.kill9();
        },
      });
      await kill;
      const restarted = await startServe();
      const unanswered = first.filter((answer) => answer.status === undefined);
      const again = await deliver(
        restarted.url,
        unanswered.map((answer) => answer.delivery),
        { concurrency: 4 },
      );
      const older = await deliver(restarted.url, late, { concurrency: 4 });
      answers.push(...first, ...again, ...older);
      await waitForDrain(world, answers, serves);

      // Assess
      expect(first.filter((answer) => answer.status === 202).length).toBeGreaterThanOrEqual(
        burst.length / 2,
      );
      expect(unanswered.length).toBeGreaterThan(0);
      expect([...again, ...older].map((answer) => answer.status)).toEqual(
        [...unanswered, ...late].map(() => 202),
      );
      expect(restarted.queuedAtStart).toBeGreaterThan(0);
      const report = await verifyBurst(world, restarted.url, answers, PIPELINES);
      expect(report.problems).toEqual([]);
      expect(report).toMatchObject({ exact: 20, rolledBack: 0, deadLetters: 0, unfinished: [] });
      const superseded = world.logs.filter(
        (line) => line.message === 'promotion finished' && line.status === 'superseded',
      );
      // A late older event's job is superseded; one the targets gate holds (its other target
      // never reported that revision) is answered waiting and queues nothing.
      const lateIds = older.flatMap((answer) => (answer.jobId === undefined ? [] : [answer.jobId]));
      expect(lateIds.length).toBeGreaterThan(0);
      expect(superseded.map((line) => line.jobId)).toEqual(expect.arrayContaining(lateIds));
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'a fault that never heals dead-letters the job in sight; healed and retried, the PR appears',
    async () => {
      // Prepare: every push to the stuck pipeline's staging repository answers 500.
      world.proxy.reset();
      const [target] = targetsOf(STUCK);
      if (target === undefined) throw new Error('no target');
      world.proxy.inject({
        method: 'POST',
        path: new RegExp(`/${target.repo}\\.git/git-receive-pack$`),
        times: Number.POSITIVE_INFINITY,
        fault: { kind: 'status', status: 500 },
      });
      const [event] = planRound(world, [STUCK], {
        round: 3,
        staging: 1,
        prod: 0,
        retries: 0,
        late: 0,
        seed: 1,
      });
      if (event === undefined) throw new Error('no event');

      // Act
      const [answer] = await deliver(serve.url, [event], { concurrency: 1 });
      const deadLettered = await waitFor('the dead letter', world.logs, () =>
        world.logs.find(
          (line) => line.message === 'promotion dead-lettered' && line.jobId === answer?.jobId,
        ),
      );
      const status = await pipelineStatus(serve.url, STUCK);
      const listed = await world.promoter([
        'dead-letters',
        'list',
        '--data',
        world.dataDir,
        '--json',
      ]);
      world.proxy.reset();
      const retried = await world.promoter([
        'dead-letters',
        'retry',
        '--all',
        '--data',
        world.dataDir,
      ]);
      const pull = await waitFor('the PR after the retry', world.logs, () =>
        world.github.standIn.pullRequests(OWNER, target.repo).find((item) => item.state === 'open'),
      );
      const healed = await waitFor('the status after the retry', world.logs, async () => {
        const promotion = (await pipelineStatus(serve.url, STUCK)).environments?.find(
          (environment) => environment.name === 'staging',
        )?.promotion;
        return promotion?.state === 'opened' ? promotion : undefined;
      });

      // Assess
      expect(answer?.status).toBe(202);
      expect(deadLettered).toMatchObject({ code: 'GIT_UNAVAILABLE', revision: event.revision });
      expect(
        world.logs.filter(
          (line) => line.message === 'promotion will be retried' && line.jobId === answer?.jobId,
        ),
      ).toHaveLength(4);
      expect(
        status.environments?.find((environment) => environment.name === 'staging'),
      ).toMatchObject({
        promotion: {
          state: 'dead-lettered',
          revision: event.revision,
          failure: { code: 'GIT_UNAVAILABLE', message: expect.stringContaining('HTTP 500') },
        },
      });
      expect(listed.code).toBe(0);
      expect(JSON.parse(listed.stdout)).toEqual([
        expect.objectContaining({
          job: expect.objectContaining({ id: answer?.jobId, revision: event.revision }),
          receiveCount: 5,
          failure: expect.objectContaining({ code: 'GIT_UNAVAILABLE' }),
        }),
      ]);
      expect(retried.code).toBe(0);
      expect(pull.title).toBe(`Promote flux-system/${STUCK} in staging to ${event.revision}`);
      expect(healed).toMatchObject({
        revision: event.revision,
        pullRequest: { number: pull.number },
      });
    },
    TEST_TIMEOUT_MS,
  );
});
