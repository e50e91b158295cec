import { type Clock, systemClock } from '../../core/ports.ts';
import type { GateTimer } from '../../core/promotion-gates.ts';

/**
 * serve's timer for the time gates (soak, window, a freeze's end). What is due is persisted in
 * the promotion records themselves (`dueAt`); this only wakes the process at the earliest one.
 * `release` looks at the due promotions and answers when the next is due; it runs once at start,
 * so a restart picks up where the last process stopped.
 */
export class TimeoutGateTimer implements GateTimer {
  private timeout: NodeJS.Timeout | undefined;
  private dueAt: number | undefined;
  private stopped = false;

  constructor(
    private readonly release: () => Promise<{ readonly nextDueAt?: string }>,
    private readonly onError: (error: unknown) => void,
    private readonly clock: Clock = systemClock,
    /** The latest a due time waits: a bound on clock drift and missed wake-ups. */
    private readonly maxSleepMs = 60_000,
  ) {}

  start(): void {
    this.run();
  }

  wakeAt(at: Date): void {
    const time = at.getTime();
    if (this.stopped || Number.isNaN(time)) return;
    if (this.dueAt !== undefined && this.dueAt <= time) return;
    clearTimeout(this.timeout);
    this.dueAt = time;
    const sleep = Math.min(Math.max(0, time - this.clock.now().getTime()), this.maxSleepMs);
    this.timeout = setTimeout(() => this.run(), sleep).unref();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timeout);
  }

  private run(): void {
    this.dueAt = undefined;
    this.timeout = undefined;
    this.release()
      .then((report) => {
        if (report.nextDueAt !== undefined) this.wakeAt(new Date(report.nextDueAt));
      })
      .catch(this.onError);
  }
}
