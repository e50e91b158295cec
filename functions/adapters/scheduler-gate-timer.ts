import {
  ConflictException,
  CreateScheduleCommand,
  type SchedulerClient,
} from '@aws-sdk/client-scheduler';
import { errorMessage, PromoterError } from '../core/errors.ts';
import { type Clock, systemClock } from '../core/ports.ts';
import type { GateTimer } from '../core/promotion-gates.ts';

/*
 * The gate timer in AWS: a one-time EventBridge Scheduler schedule per due minute that invokes
 * the reconcile function then (which releases every due promotion), and deletes itself after
 * it ran. The job queue is FIFO, which takes no per-message delay, so this is what makes a
 * soak, a window or a freeze's end go on time instead of at the next periodic sweep.
 * Scheduler fires within the minute it is set for (60-second precision): set for the minute
 * after the due time, a schedule never fires before it. One schedule per minute, named after
 * it: promotions due together share it, and a second ask for the same minute (a repeated
 * event, another function) is the service's ConflictException, which means it is already set.
 */

/** What the schedule hands the reconcile function: this is a due gate, not the periodic sweep. */
export const GATE_TIMER_SOURCE = 'gate-timer';

export interface SchedulerGateTimerOptions {
  /** The schedule group the schedules go in (the stack's; the role may only be used for it). */
  readonly groupName: string;
  /** The reconcile function's ARN: what the schedule invokes. */
  readonly targetArn: string;
  /** The role EventBridge Scheduler assumes to invoke it. */
  readonly roleArn: string;
  readonly clock?: Clock;
}

const MINUTE_MS = 60_000;

/** The next whole minute at or after `at`: `10:30:00.250Z` → `10:31:00Z`, `10:31:00Z` stays. */
const atMinute = (at: Date): Date => new Date(Math.ceil(at.getTime() / MINUTE_MS) * MINUTE_MS);

/** `gate-20261201T1031Z`: the schedule of one due minute (names are 1-64 of [0-9A-Za-z-_.]). */
export const gateScheduleName = (at: Date): string =>
  `gate-${atMinute(at).toISOString().slice(0, 16).replace(/[-:]/g, '')}Z`;

export class SchedulerGateTimer implements GateTimer {
  readonly #clock: Clock;
  /** Minutes this process has scheduled already: a repeated ask costs no API call. */
  readonly #scheduled = new Set<string>();

  constructor(
    private readonly client: SchedulerClient,
    private readonly options: SchedulerGateTimerOptions,
  ) {
    this.#clock = options.clock ?? systemClock;
  }

  async wakeAt(at: Date): Promise<void> {
    // Due now or past: whoever asked is looking already, and the sweep looks again.
    if (Number.isNaN(at.getTime()) || at.getTime() <= this.#clock.now().getTime()) return;
    const due = atMinute(at);
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
            Input: JSON.stringify({ source: GATE_TIMER_SOURCE, dueAt: due.toISOString() }),
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
