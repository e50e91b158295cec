import type { PromotionWindow } from './pipeline.ts';

/*
 * Weekly promotion windows (`pipeline-promoter/window.{env}`, DESIGN.md section 11): days,
 * hours and an IANA time zone, evaluated on the zone's wall clock with the offsets Intl gives,
 * so they stay right across daylight-saving changes.
 */

const MINUTE_MS = 60_000;
const DAY_MS = 86_400_000;
const MINUTES_PER_DAY = 1440;
/** Every weekday comes round within 8 days; the rest is room for days a zone skipped. */
const SEARCH_DAYS = 15;

export const WINDOW_DAY_NAMES = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'] as const;

const WINDOW_FORMAT =
  '<days> <HH:MM>-<HH:MM> <time zone>, e.g. "Mon-Fri 09:00-17:00 Europe/Berlin"';

const dayNumber = (name: string): number | undefined => {
  const index = WINDOW_DAY_NAMES.findIndex((day) => day.toLowerCase() === name.toLowerCase());
  return index < 0 ? undefined : index;
};

/** `Mon-Fri`, `Mon,Wed,Fri`, `Fri-Mon` (wrapping through the weekend): the day numbers. */
const parseDays = (text: string): number[] | string => {
  const days = new Set<number>();
  for (const part of text.split(',')) {
    const [first, last, ...rest] = part.split('-');
    if (first === undefined || first === '' || last === '' || rest.length > 0) {
      return `expected days like Mon-Fri or Mon,Wed,Fri, got ${JSON.stringify(text)}`;
    }
    const from = dayNumber(first);
    const to = last === undefined ? from : dayNumber(last);
    const unknown = from === undefined ? first : to === undefined ? last : undefined;
    if (from === undefined || to === undefined) {
      return `unknown day ${JSON.stringify(unknown)}: expected ${WINDOW_DAY_NAMES.slice(1).join(', ')} or Sun`;
    }
    for (let day = from; ; day = (day + 1) % 7) {
      days.add(day);
      if (day === to) break;
    }
  }
  return [...days].sort((a, b) => a - b);
};

/** `HH:MM` as minutes of the day; `24:00` only as an end. */
const parseTime = (text: string, role: 'start' | 'end'): number | string => {
  const match = /^(\d{1,2}):([0-5]\d)$/.exec(text);
  const minute = match === null ? undefined : Number(match[1]) * 60 + Number(match[2]);
  const last = role === 'end' ? MINUTES_PER_DAY : MINUTES_PER_DAY - 1;
  if (minute !== undefined && minute <= last) return minute;
  return role === 'start'
    ? `expected a start time from 00:00 to 23:59, got ${JSON.stringify(text)}`
    : `expected an end time from 00:00 to 24:00, got ${JSON.stringify(text)}`;
};

const formatters = new Map<string, Intl.DateTimeFormat>();

const formatterFor = (timeZone: string): Intl.DateTimeFormat => {
  let formatter = formatters.get(timeZone);
  if (formatter === undefined) {
    formatter = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(timeZone, formatter);
  }
  return formatter;
};

/** The zone's canonical name (`europe/berlin` → `Europe/Berlin`), or undefined when Intl knows none. */
const canonicalTimeZone = (timeZone: string): string | undefined => {
  try {
    return new Intl.DateTimeFormat('en-US', { timeZone }).resolvedOptions().timeZone;
  } catch {
    return undefined;
  }
};

/**
 * Parses a window annotation: days (`Mon-Fri`, `Mon,Wed,Fri`, `Sat-Sun`, `Fri-Mon`), hours
 * `HH:MM-HH:MM` (the end may be `24:00`, or before the start for a window past midnight) and an
 * IANA time zone. Returns what was expected as a string when the text is not a window.
 *
 * @example
 * parseWindow('Mon-Fri 09:00-17:00 Europe/Berlin');
 * // { days: [1, 2, 3, 4, 5], startMinute: 540, endMinute: 1020, timeZone: 'Europe/Berlin',
 * //   text: 'Mon-Fri 09:00-17:00 Europe/Berlin' }
 * parseWindow('Fri 22:00-06:00 UTC'); // overnight: Friday 22:00 to Saturday 06:00
 * parseWindow('Mon-Fri 09:00-17:00 Europe/Berln');
 * // 'unknown time zone "Europe/Berln": expected an IANA time zone such as Europe/Berlin or UTC'
 */
export const parseWindow = (text: string): PromotionWindow | string => {
  const written = text.trim();
  const tokens = written.replace(/\s*([,-])\s*/g, '$1').split(/\s+/);
  const [daysText, hoursText, timeZoneText] = tokens;
  if (tokens.length === 2 && hoursText !== undefined && /^[\d:]+-[\d:]+$/.test(hoursText)) {
    return `expected a time zone after the hours (IANA, e.g. Europe/Berlin or UTC): ${WINDOW_FORMAT}, got ${JSON.stringify(written)}`;
  }
  if (
    tokens.length !== 3 ||
    daysText === undefined ||
    hoursText === undefined ||
    timeZoneText === undefined
  ) {
    return `expected ${WINDOW_FORMAT}, got ${JSON.stringify(written)}`;
  }
  const days = parseDays(daysText);
  if (typeof days === 'string') return days;
  const [startText, endText, ...extra] = hoursText.split('-');
  if (startText === undefined || endText === undefined || extra.length > 0) {
    return `expected hours like 09:00-17:00, got ${JSON.stringify(hoursText)}`;
  }
  const startMinute = parseTime(startText, 'start');
  if (typeof startMinute === 'string') return startMinute;
  const endMinute = parseTime(endText, 'end');
  if (typeof endMinute === 'string') return endMinute;
  if (startMinute === endMinute) {
    return `expected an end time other than the start (${startText}): for whole days write 00:00-24:00`;
  }
  const timeZone = canonicalTimeZone(timeZoneText);
  if (timeZone === undefined) {
    return `unknown time zone ${JSON.stringify(timeZoneText)}: expected an IANA time zone such as Europe/Berlin or UTC`;
  }
  return { days, startMinute, endMinute, timeZone, text: written };
};

/** The zone's wall clock at `ms`, as the milliseconds of the UTC date-time with the same fields. */
const wallClock = (timeZone: string, ms: number): number => {
  const fields: Record<string, number> = {};
  for (const part of formatterFor(timeZone).formatToParts(ms)) {
    if (part.type !== 'literal') fields[part.type] = Number(part.value);
  }
  const field = (type: string): number => fields[type] ?? 0;
  const subSecond = ((ms % 1000) + 1000) % 1000;
  return (
    Date.UTC(
      field('year'),
      field('month') - 1,
      field('day'),
      field('hour') % 24,
      field('minute'),
      field('second'),
    ) + subSecond
  );
};

const offsetAt = (timeZone: string, ms: number): number => wallClock(timeZone, ms) - ms;

interface LocalTime {
  /** Days since 1970-01-01 on the zone's calendar. */
  readonly day: number;
  /** 0 = Sunday ... 6 = Saturday. */
  readonly weekday: number;
  readonly minute: number;
}

const weekdayOf = (day: number): number => (((day + 4) % 7) + 7) % 7; // 1970-01-01 was a Thursday

const localTime = (timeZone: string, ms: number): LocalTime => {
  const wall = wallClock(timeZone, ms);
  const day = Math.floor(wall / DAY_MS);
  return {
    day,
    weekday: weekdayOf(day),
    minute: Math.floor((wall - day * DAY_MS) / MINUTE_MS),
  };
};

/**
 * Whether the window is open at `at`, by the zone's wall clock. A window that runs past
 * midnight belongs to the day it starts on: `Fri 22:00-06:00` is open early on Saturday.
 *
 * @example
 * const window = parseWindow('Mon-Fri 09:00-17:00 Europe/Berlin') as PromotionWindow;
 * isInsideWindow(window, new Date('2026-06-01T08:00:00Z')); // true: Monday 10:00 in Berlin
 * isInsideWindow(window, new Date('2026-06-06T08:00:00Z')); // false: Saturday
 */
export const isInsideWindow = (window: PromotionWindow, at: Date): boolean => {
  const { weekday, minute } = localTime(window.timeZone, at.getTime());
  const opensOn = (day: number): boolean => window.days.includes(day);
  if (window.startMinute < window.endMinute) {
    return opensOn(weekday) && minute >= window.startMinute && minute < window.endMinute;
  }
  return (
    (opensOn(weekday) && minute >= window.startMinute) ||
    (opensOn((weekday + 6) % 7) && minute < window.endMinute)
  );
};

/** The instants whose wall clock reads `wall`: none in a spring-forward gap, two in a repeated hour. */
const instantsOfWallClock = (timeZone: string, wall: number): number[] => {
  const offsets = new Set([offsetAt(timeZone, wall - DAY_MS), offsetAt(timeZone, wall + DAY_MS)]);
  return [...offsets]
    .map((offset) => wall - offset)
    .filter((instant) => wallClock(timeZone, instant) === wall)
    .sort((a, b) => a - b);
};

/** The instants in [from, to] at which the zone's offset changes (its wall clock jumps). */
const offsetChanges = (timeZone: string, from: number, to: number): number[] => {
  const changes: number[] = [];
  let before = offsetAt(timeZone, from);
  for (let start = from; start < to; start += DAY_MS / 2) {
    const end = Math.min(start + DAY_MS / 2, to);
    const after = offsetAt(timeZone, end);
    if (after !== before) {
      // Offsets change on whole seconds: the first second with the new offset.
      let low = Math.floor(start / 1000);
      let high = Math.ceil(end / 1000);
      while (high - low > 1) {
        const middle = Math.floor((low + high) / 2);
        if (offsetAt(timeZone, middle * 1000) === before) low = middle;
        else high = middle;
      }
      changes.push(high * 1000);
    }
    before = after;
  }
  return changes;
};

/**
 * The first instant >= `from` for which `wanted` holds, among those where it can start to:
 * `minute` (counted from the start of a window day, so it may pass midnight) on the window's
 * days, and the instants where the zone's clock jumps.
 */
const firstInstant = (
  window: PromotionWindow,
  from: number,
  minute: number,
  wanted: (instant: number) => boolean,
): number | undefined => {
  if (wanted(from)) return from;
  const firstDay = localTime(window.timeZone, from).day - 1;
  // Most answers are within a weekend: a short search first, as each instant costs an Intl call.
  for (const days of [3, SEARCH_DAYS]) {
    const to = from + days * DAY_MS;
    const candidates = offsetChanges(window.timeZone, from, to);
    for (let day = firstDay; day <= firstDay + days + 1; day += 1) {
      if (!window.days.includes(weekdayOf(day))) continue;
      candidates.push(...instantsOfWallClock(window.timeZone, day * DAY_MS + minute * MINUTE_MS));
    }
    const found = candidates
      .filter((instant) => instant > from && instant <= to)
      .sort((a, b) => a - b)
      .find(wanted);
    if (found !== undefined) return found;
  }
  return undefined;
};

/**
 * The first instant at or after `at` inside the window: `at` itself when the window is open.
 * In the hour a spring-forward change skips, a window starting then opens when the clock
 * jumps; in a repeated hour, at the first of the two times.
 *
 * @example
 * const window = parseWindow('Mon-Fri 09:00-17:00 Europe/Berlin') as PromotionWindow;
 * nextWindowOpening(window, new Date('2026-06-05T16:00:00Z')); // Friday 18:00 in Berlin
 * // 2026-06-08T07:00:00.000Z: Monday 09:00 in Berlin
 */
export const nextWindowOpening = (window: PromotionWindow, at: Date): Date => {
  const opening = firstInstant(window, at.getTime(), window.startMinute, (instant) =>
    isInsideWindow(window, new Date(instant)),
  );
  // A parsed window has at least one day, which comes round within the search.
  if (opening === undefined) throw new Error(`window ${window.text} does not open`);
  return new Date(opening);
};

/**
 * The first instant at or after `at` outside the window: `at` itself when the window is
 * closed, undefined when it never closes (every day, 00:00-24:00).
 *
 * @example
 * const window = parseWindow('Fri 22:00-06:00 UTC') as PromotionWindow;
 * windowClosesAt(window, new Date('2026-06-05T23:00:00Z'));
 * // 2026-06-06T06:00:00.000Z: Saturday 06:00
 */
export const windowClosesAt = (window: PromotionWindow, at: Date): Date | undefined => {
  // An overnight window ends on the day after the one it starts on.
  const endMinute =
    window.endMinute < window.startMinute ? window.endMinute + MINUTES_PER_DAY : window.endMinute;
  const closing = firstInstant(
    window,
    at.getTime(),
    endMinute,
    (instant) => !isInsideWindow(window, new Date(instant)),
  );
  return closing === undefined ? undefined : new Date(closing);
};
