import { describe, expect, it } from 'vitest';
import { parseUntil } from '../../functions/cli/gate-commands.ts';

describe('promoter freeze --until', () => {
  const now = new Date('2026-12-01T10:00:00Z');

  it.each([
    ['2026-12-24T18:00:00+01:00', '2026-12-24T17:00:00.000Z'],
    ['2h', '2026-12-01T12:00:00.000Z'],
    ['1h30m', '2026-12-01T11:30:00.000Z'],
    ['45m', '2026-12-01T10:45:00.000Z'],
  ])('reads %s as %s', (text, expected) => {
    expect(parseUntil(text, now)).toBe(expected);
  });

  it.each(['tomorrow', '2026-13-01T00:00:00Z', '5 hours'])(
    'refuses %s, naming the flag',
    (text) => {
      expect(() => parseUntil(text, now)).toThrow(/^--until: /);
    },
  );
});
