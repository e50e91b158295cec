import { randomUUID } from 'node:crypto';
import {
  CreateScheduleGroupCommand,
  GetScheduleCommand,
  ListSchedulesCommand,
  SchedulerClient,
} from '@aws-sdk/client-scheduler';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import {
  gateScheduleName,
  SchedulerGateTimer,
} from '../../functions/adapters/scheduler-gate-timer.ts';
import { caught } from '../support/caught.ts';
import { awsClientConfig } from '../support/moto-server.ts';

/**
 * One-time schedules for due gates, on moto's EventBridge Scheduler: what the schedule invokes,
 * when and as whom, one per due second, and none for a time already past.
 */
const NOW = new Date('2026-12-01T10:00:00Z');
const TARGET = 'arn:aws:lambda:us-east-1:123456789012:function:reconcile';
const ROLE = 'arn:aws:iam::123456789012:role/gate-schedules';

let client: SchedulerClient;

beforeAll(() => {
  client = new SchedulerClient(awsClientConfig(inject('motoEndpoint')));
});

const group = async (): Promise<string> => {
  const name = `gates-${randomUUID().slice(0, 8)}`;
  await client.send(new CreateScheduleGroupCommand({ Name: name }));
  return name;
};

const timer = (groupName: string) =>
  new SchedulerGateTimer(client, {
    groupName,
    targetArn: TARGET,
    roleArn: ROLE,
    clock: { now: () => NOW },
  });

describe('SchedulerGateTimer (moto)', () => {
  it('puts a one-time schedule of the reconcile function at the minute after the due time, deleted after', async () => {
    // Prepare
    const groupName = await group();
    const due = new Date('2026-12-01T10:30:00.250Z');

    // Act
    await timer(groupName).wakeAt(due);

    // Assess
    const schedule = await client.send(
      new GetScheduleCommand({ GroupName: groupName, Name: gateScheduleName(due) }),
    );
    // Scheduler fires within the minute it is set for: the next whole one is never early.
    expect(gateScheduleName(due)).toBe('gate-20261201T1031Z');
    expect(schedule).toMatchObject({
      ScheduleExpression: 'at(2026-12-01T10:31:00)',
      ScheduleExpressionTimezone: 'UTC',
      FlexibleTimeWindow: { Mode: 'OFF' },
      ActionAfterCompletion: 'DELETE',
      Target: { Arn: TARGET, RoleArn: ROLE },
    });
    expect(JSON.parse(schedule.Target?.Input ?? '{}')).toEqual({
      source: 'gate-timer',
      dueAt: '2026-12-01T10:31:00.000Z',
    });
  });

  it('shares one schedule among promotions due the same minute, across functions', async () => {
    // Prepare
    const groupName = await group();
    const due = new Date('2026-12-01T11:00:00Z');

    // Act: the same timer twice, then another function's timer (the service's conflict).
    const first = timer(groupName);
    await first.wakeAt(due);
    await first.wakeAt(new Date('2026-12-01T10:59:30Z'));
    await timer(groupName).wakeAt(new Date('2026-12-01T10:59:59.900Z'));

    // Assess
    const listed = await client.send(new ListSchedulesCommand({ GroupName: groupName }));
    expect(listed.Schedules?.map((schedule) => schedule.Name)).toEqual([gateScheduleName(due)]);
  });

  it('puts nothing for a time that is due already', async () => {
    // Prepare
    const groupName = await group();

    // Act
    await timer(groupName).wakeAt(new Date(NOW.getTime() - 1000));
    await timer(groupName).wakeAt(NOW);

    // Assess
    const listed = await client.send(new ListSchedulesCommand({ GroupName: groupName }));
    expect(listed.Schedules ?? []).toEqual([]);
  });

  it('fails with GATE_TIMER_FAILED, naming the schedule, where the group does not exist', async () => {
    // Act
    const error = await caught(timer('no-such-group').wakeAt(new Date('2026-12-01T12:00:00Z')));

    // Assess
    expect(error).toMatchObject({ code: 'GATE_TIMER_FAILED', retryable: true });
    expect(String(error)).toMatch(/gate-20261201T1200Z in group no-such-group/);
  });
});
