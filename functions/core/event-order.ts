/**
 * Event timestamps are ISO 8601 date-times that may carry different UTC offsets
 * (`2026-11-02T10:30:00+02:00` is earlier than `2026-11-02T09:00:00Z`), so they are ordered as
 * instants (Date.parse), never as text.
 */

/** The instant of an event timestamp in epoch milliseconds; RangeError naming `what` if invalid. */
export const eventTime = (timestamp: string, what: string): number => {
  const time = Date.parse(timestamp);
  if (Number.isNaN(time)) {
    throw new RangeError(
      `${what}: eventTimestamp ${JSON.stringify(timestamp)} is not an ISO 8601 date-time`,
    );
  }
  return time;
};

/** True when event time `a` is strictly later than `b` (false for equal instants or invalid text). */
export const isLaterEvent = (a: string, b: string): boolean => Date.parse(a) > Date.parse(b);
