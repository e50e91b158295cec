import { describe, expect, it } from 'vitest';
import type { PromotionWindow } from '../../functions/core/pipeline.ts';
import {
  isInsideWindow,
  nextWindowOpening,
  parseWindow,
  windowClosesAt,
} from '../../functions/core/promotion-window.ts';

const windowOf = (text: string): PromotionWindow => {
  const window = parseWindow(text);
  if (typeof window === 'string') throw new Error(window);
  return window;
};

const at = (iso: string): Date => new Date(iso);

describe('parseWindow', () => {
  it.each([
    ['Mon-Fri 09:00-17:00 Europe/Berlin', [1, 2, 3, 4, 5], 540, 1020, 'Europe/Berlin'],
    ['Mon,Wed,Fri 10:30-11:00 UTC', [1, 3, 5], 630, 660, 'UTC'],
    ['Sat-Sun 00:00-24:00 America/New_York', [0, 6], 0, 1440, 'America/New_York'],
    ['Fri-Mon 08:00-12:00 UTC', [0, 1, 5, 6], 480, 720, 'UTC'],
    ['Fri 22:00-06:00 Europe/Berlin', [5], 1320, 360, 'Europe/Berlin'],
    ['mon , wed-thu 9:00 - 17:00 europe/berlin', [1, 3, 4], 540, 1020, 'Europe/Berlin'],
    ['Mon-Mon 09:00-10:00 UTC', [1], 540, 600, 'UTC'],
  ])('reads %j', (text, days, startMinute, endMinute, timeZone) => {
    // Act
    const window = parseWindow(text);

    // Assess
    expect(window).toEqual({ days, startMinute, endMinute, timeZone, text: text.trim() });
  });

  it.each([
    ['', /^expected <days> <HH:MM>-<HH:MM> <time zone>/],
    ['weekdays', /^expected <days> <HH:MM>-<HH:MM> <time zone>/],
    ['Mon-Fri 09:00-17:00', /^expected a time zone after the hours/],
    [
      'Mnday 09:00-17:00 UTC',
      /^unknown day "Mnday": expected Mon, Tue, Wed, Thu, Fri, Sat or Sun$/,
    ],
    ['Mon-Frii 09:00-17:00 UTC', /^unknown day "Frii"/],
    [
      'Mon-Tue-Wed 09:00-17:00 UTC',
      /^expected days like Mon-Fri or Mon,Wed,Fri, got "Mon-Tue-Wed"$/,
    ],
    ['Mon,,Fri 09:00-17:00 UTC', /^expected days like Mon-Fri/],
    ['Mon-Fri 09:00-17:00-18:00 UTC', /^expected hours like 09:00-17:00, got "09:00-17:00-18:00"$/],
    ['Mon-Fri 9-17 UTC', /^expected a start time from 00:00 to 23:59, got "9"$/],
    ['Mon-Fri 25:00-17:00 UTC', /^expected a start time from 00:00 to 23:59, got "25:00"$/],
    ['Mon-Fri 24:00-17:00 UTC', /^expected a start time from 00:00 to 23:59, got "24:00"$/],
    ['Mon-Fri 09:60-17:00 UTC', /^expected a start time from 00:00 to 23:59, got "09:60"$/],
    ['Mon-Fri 09:00-24:01 UTC', /^expected an end time from 00:00 to 24:00, got "24:01"$/],
    ['Mon-Fri 09:00-5pm UTC', /^expected an end time from 00:00 to 24:00, got "5pm"$/],
    ['Mon 09:00-09:00 UTC', /^expected an end time other than the start \(09:00\)/],
    [
      'Mon-Fri 09:00-17:00 Europe/Berln',
      /^unknown time zone "Europe\/Berln": expected an IANA time zone such as Europe\/Berlin or UTC$/,
    ],
    ['Mon-Fri 09:00-17:00 Mars/Olympus', /^unknown time zone "Mars\/Olympus"/],
  ])('refuses %j, saying what was expected', (text, message) => {
    // Act
    const window = parseWindow(text);

    // Assess
    expect(window).toMatch(message);
  });
});

describe('isInsideWindow', () => {
  const office = windowOf('Mon-Fri 09:00-17:00 Europe/Berlin');

  it.each([
    ['2026-06-01T07:00:00Z', true, 'Monday 09:00 in Berlin (summer time): the start counts'],
    ['2026-06-01T06:59:59Z', false, 'Monday 08:59:59'],
    ['2026-06-05T14:59:59Z', true, 'Friday 16:59:59'],
    ['2026-06-05T15:00:00Z', false, 'Friday 17:00: the end does not'],
    ['2026-06-06T10:00:00Z', false, 'Saturday noon'],
    ['2026-01-05T08:00:00Z', true, 'Monday 09:00 in winter time (UTC+1)'],
    ['2026-01-05T07:59:00Z', false, 'Monday 08:59 in winter time'],
  ])('at %s: %s (%s)', (instant, inside) => {
    expect(isInsideWindow(office, at(instant))).toBe(inside);
  });

  it('counts an overnight window on the day it starts: Friday 22:00 to Saturday 06:00', () => {
    // Prepare
    const night = windowOf('Fri 22:00-06:00 UTC');

    // Act
    const inside = [
      '2026-06-04T23:00:00Z', // Thursday night: not a window day
      '2026-06-05T21:59:00Z',
      '2026-06-05T22:00:00Z',
      '2026-06-06T05:59:00Z', // Saturday morning, in Friday's window
      '2026-06-06T06:00:00Z',
      '2026-06-06T23:00:00Z', // Saturday night: not a window day
    ].map((instant) => isInsideWindow(night, at(instant)));

    // Assess
    expect(inside).toEqual([false, false, true, true, false, false]);
  });

  it('takes 24:00 as the end of the day, and Fri-Mon through the weekend', () => {
    // Prepare
    const weekend = windowOf('Fri-Mon 00:00-24:00 UTC');

    // Act
    const inside = [
      '2026-06-04T23:59:59Z', // Thursday
      '2026-06-05T00:00:00Z', // Friday
      '2026-06-07T12:00:00Z', // Sunday
      '2026-06-08T23:59:59Z', // Monday
      '2026-06-09T00:00:00Z', // Tuesday
    ].map((instant) => isInsideWindow(weekend, at(instant)));

    // Assess
    expect(inside).toEqual([false, true, true, true, false]);
  });
});

describe('nextWindowOpening', () => {
  const berlin = windowOf('Mon-Fri 09:00-17:00 Europe/Berlin');
  const newYork = windowOf('Mon-Fri 09:00-17:00 America/New_York');

  it('is the instant itself inside the window', () => {
    const inside = at('2026-06-03T10:11:12.345Z');
    expect(nextWindowOpening(berlin, inside)).toEqual(inside);
  });

  it.each([
    [
      'Friday evening to Monday morning',
      berlin,
      '2026-06-05T16:00:00Z',
      '2026-06-08T07:00:00.000Z',
    ],
    [
      'before the start on the same day',
      berlin,
      '2026-06-03T05:00:00Z',
      '2026-06-03T07:00:00.000Z',
    ],
    ['after the end to the next day', berlin, '2026-06-03T15:00:00Z', '2026-06-04T07:00:00.000Z'],
    // Berlin moves to summer time on Sunday 2026-03-29: Friday is UTC+1, Monday UTC+2.
    [
      'over the spring change in Berlin',
      berlin,
      '2026-03-27T16:30:00Z',
      '2026-03-30T07:00:00.000Z',
    ],
    // And back to winter time on Sunday 2026-10-25.
    [
      'over the autumn change in Berlin',
      berlin,
      '2026-10-23T16:00:00Z',
      '2026-10-26T08:00:00.000Z',
    ],
    // New York moves to daylight time on Sunday 2026-03-08 (UTC-5 to UTC-4).
    [
      'over the spring change in New York',
      newYork,
      '2026-03-06T22:00:00Z',
      '2026-03-09T13:00:00.000Z',
    ],
    // And back on Sunday 2026-11-01.
    [
      'over the autumn change in New York',
      newYork,
      '2026-10-30T21:00:00Z',
      '2026-11-02T14:00:00.000Z',
    ],
  ])('%s', (_case, window, from, expected) => {
    // Act
    const opening = nextWindowOpening(window, at(from));

    // Assess
    expect(opening.toISOString()).toBe(expected);
    expect(isInsideWindow(window, opening)).toBe(true);
    expect(isInsideWindow(window, new Date(opening.getTime() - 1))).toBe(false);
  });

  it('opens when the clock jumps past a start that the spring change skips', () => {
    // Prepare: on 2026-03-29 Berlin's clocks go from 02:00 straight to 03:00 (01:00Z).
    const window = windowOf('Sun 02:30-04:00 Europe/Berlin');

    // Act
    const opening = nextWindowOpening(window, at('2026-03-28T12:00:00Z'));

    // Assess
    expect(opening.toISOString()).toBe('2026-03-29T01:00:00.000Z');
    expect(isInsideWindow(window, at('2026-03-29T00:59:59Z'))).toBe(false);
  });

  it('skips a day whose whole window the spring change swallows', () => {
    const window = windowOf('Sun 02:15-02:45 Europe/Berlin');
    expect(nextWindowOpening(window, at('2026-03-28T12:00:00Z')).toISOString()).toBe(
      '2026-04-05T00:15:00.000Z',
    );
  });

  it('opens at both 02:30s of the hour the autumn change repeats, by the wall clock', () => {
    // Prepare: on 2026-10-25 Berlin reads 02:00-03:00 twice, in summer time then in winter time.
    const window = windowOf('Sun 02:30-02:45 Europe/Berlin');

    // Act
    const first = nextWindowOpening(window, at('2026-10-24T12:00:00Z'));
    const second = nextWindowOpening(window, at('2026-10-25T00:50:00Z'));

    // Assess
    expect(first.toISOString()).toBe('2026-10-25T00:30:00.000Z');
    expect(second.toISOString()).toBe('2026-10-25T01:30:00.000Z');
  });

  it('opens an overnight window in the evening of its day', () => {
    const window = windowOf('Fri 22:00-06:00 America/New_York');
    expect(nextWindowOpening(window, at('2026-06-06T12:00:00Z')).toISOString()).toBe(
      '2026-06-13T02:00:00.000Z',
    );
  });
});

describe('windowClosesAt', () => {
  it('is the end of the open window, the instant itself when it is closed', () => {
    // Prepare
    const window = windowOf('Mon-Fri 09:00-17:00 America/New_York');

    // Act
    const open = windowClosesAt(window, at('2026-03-09T14:00:00Z'));
    const closed = windowClosesAt(window, at('2026-03-07T14:00:00Z'));

    // Assess
    expect(open?.toISOString()).toBe('2026-03-09T21:00:00.000Z');
    expect(closed?.toISOString()).toBe('2026-03-07T14:00:00.000Z');
  });

  it('ends an overnight window the next morning, an hour later when the clocks go back', () => {
    // Prepare: Saturday 22:00 summer time (20:00Z) to Sunday 06:00 winter time (05:00Z).
    const window = windowOf('Sat 22:00-06:00 Europe/Berlin');

    // Act
    const closes = windowClosesAt(window, at('2026-10-24T21:00:00Z'));

    // Assess
    expect(closes?.toISOString()).toBe('2026-10-25T05:00:00.000Z');
  });

  it('runs a 24:00 window to midnight, and a window open all week never closes', () => {
    const weekend = windowOf('Sat-Sun 00:00-24:00 UTC');
    expect(windowClosesAt(weekend, at('2026-06-06T10:00:00Z'))?.toISOString()).toBe(
      '2026-06-08T00:00:00.000Z',
    );
    expect(windowClosesAt(windowOf('Mon-Sun 00:00-24:00 UTC'), at('2026-06-06T10:00:00Z'))).toBe(
      undefined,
    );
  });
});
