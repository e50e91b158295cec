import type { MetricPoint, MetricsSink } from '../core/ports.ts';
import { compareText } from '../core/text-order.ts';

/**
 * The metrics twin for `serve` and tests: sums per metric name and dimension set, as
 * CloudWatch would aggregate them, readable on `GET /metrics`.
 */
export class MemoryMetricsSink implements MetricsSink {
  private readonly totals = new Map<string, { point: MetricPoint; sum: number; count: number }>();

  record(point: MetricPoint): void {
    const dimensions = Object.entries(point.dimensions)
      .sort(([a], [b]) => compareText(a, b))
      .map(([name, value]) => `${name}=${value}`)
      .join(',');
    const key = `${point.name}{${dimensions}}`;
    const total = this.totals.get(key);
    if (total === undefined) this.totals.set(key, { point, sum: point.value, count: 1 });
    else {
      total.sum += point.value;
      total.count += 1;
    }
  }

  /** `{ "WebhookRequests{Outcome=accepted}": { sum, count, unit } }` */
  snapshot(): Record<string, { sum: number; count: number; unit: string }> {
    return Object.fromEntries(
      [...this.totals].map(([key, total]) => [
        key,
        { sum: total.sum, count: total.count, unit: total.point.unit },
      ]),
    );
  }

  sum(name: string, dimensions: Readonly<Record<string, string>> = {}): number {
    let sum = 0;
    for (const { point, sum: value } of this.totals.values()) {
      if (point.name !== name) continue;
      if (Object.entries(dimensions).every(([key, wanted]) => point.dimensions[key] === wanted)) {
        sum += value;
      }
    }
    return sum;
  }
}
