import { describe, expect, it } from 'vitest';
import { compareText } from '../../functions/core/text-order.ts';

describe('compareText', () => {
  it('orders by code point, as DynamoDB sort keys and SQLite BINARY do, not by locale', () => {
    // Prepare
    const names = ['staging', 'prod', 'Prod', 'dev-2', 'dev', 'dév', 'dev_1'];

    // Act
    const sorted = [...names].sort(compareText);

    // Assess: UTF-8 bytes compared one by one give the same order.
    expect(sorted).toEqual(['Prod', 'dev', 'dev-2', 'dev_1', 'dév', 'prod', 'staging']);
    expect(sorted).toEqual(
      [...names].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))),
    );
  });

  it('puts characters above U+FFFF after U+E000–U+FFFF, where UTF-16 units put them before', () => {
    // Prepare
    const texts = ['a\u{1f600}', 'a\u{ffff}', 'a\u{e000}', 'a'];

    // Act
    const sorted = [...texts].sort(compareText);

    // Assess
    expect(sorted).toEqual(['a', 'a\u{e000}', 'a\u{ffff}', 'a\u{1f600}']);
    expect([...texts].sort()).not.toEqual(sorted);
    expect(compareText('same', 'same')).toBe(0);
  });
});
