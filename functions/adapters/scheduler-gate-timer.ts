import {
  ConflictException,
  CreateScheduleCommand,
  type SchedulerClient,
} from '@aws-sdk/client-scheduler';
import { errorMessage, PromoterError } from '../core/errors.ts';
import { type Clock, systemClock } from '../core/ports.ts';
import type { GateTimer } from '../core/promotion-gates.ts';

/*
 * The gate timer in AWS: a one-time EventBridge Scheduler schedule per due second that invokes
 * the reconcile function then (which releases every due promotion), and deletes itself after
 * it ran. The job queue is FIFO, which takes no per-message delay, so this is what makes a
 * soak, a window or a freeze's end go on time instead of at the next periodic sweep. One
 * schedule per second, named after it: promotions due together share it, and a second ask for
 * the same second (a repeated event, another function) is the service's ConflictException,
 * which means it is already set.
 */

export interface SchedulerGateTimerOptions {
  /** The schedule group the schedules go in (the stack's; the role may only be used for it). */
  readonly groupName: string;
  /** The reconcile function's ARN: what the schedule invokes. */
  readonly targetArn: string;
  /** The role EventBridge Scheduler assumes to invoke it. */
  readonly roleArn: string;
  readonly clock?: Clock;
}

/** `2026-12-01T10:30:00Z` (rounded up to the second) → `at(2026-12-01T10:30:00)`, in UTC. */
const atSecond = (at: Date): Date => new Date(Math.ceil(at.getTime() / 1000) * 1000);

/** `gate-20261201T103000Z`: the schedule of one due second (names are 1-64 of [0-9A-Za-z-_.]). */
export const gateScheduleName = (at: Date): string =>
  `gate-${atSecond(at)
    .toISOString()
    .replace(/\.\d{3}Z$/, 'Z')
    .replace(/[-:]/g, '')}`;

export class SchedulerGateTimer implements GateTimer {
  readonly #clock: Clock;
  /** Seconds this process has scheduled already: a repeated ask costs no API call. */
  readonly #scheduled = new Set<string>();

  constructor(
    private readonly client: SchedulerClient,
    private readonly options: SchedulerGateTimerOptions,
  ) {
    this.#clock = options.clock ?? systemClock;
  }

  async wakeAt(at: Date): Promise<void> {
    const due = atSecond(at);
    // Due now or past: whoever asked is looking already, and the sweep looks again.
    if (Number.isNaN(due.getTime()) || due.getTime() <= this.#clock.now().getTime()) return;
    const name = gateScheduleName(due);
    if (this.#scheduled.has(name)) return;
    try {
      await this.client.send(
        new CreateScheduleCommand({
          Name: name,
          GroupName: this.options.groupName,
          Description: 'Pipeline Promoter: a promotion gate (soak, window, freeze) is due',
          ScheduleExpression: `at(${due.toISOString().slice(0, 19)})`,
          ScheduleExpressionTimezone: 'UTC',
          FlexibleTimeWindow: { Mode: 'OFF' },
          ActionAfterCompletion: 'DELETE',
          Target: {
            Arn: this.options.targetArn,
            RoleArn: this.options.roleArn,
            Input: JSON.stringify({ source: 'gate-timer', dueAt: due.toISOString() }),
            // A throttled sweep (reserved concurrency 1) is tried again; the periodic one backs it.
            RetryPolicy: { MaximumEventAgeInSeconds: 3600, MaximumRetryAttempts: 20 },
          },
        }),
      );
    } catch (error) {
      if (!(error instanceof ConflictException)) {
        throw new PromoterError(
          'GATE_TIMER_FAILED',
          `no schedule ${name} in group ${this.options.groupName}: ${errorMessage(error)}`,
          { retryable: true, cause: error, data: { schedule: name } },
        );
      }
    }
    this.#scheduled.add(name);
  }
}
