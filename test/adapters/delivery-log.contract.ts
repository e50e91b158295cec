import { describe, expect, it } from 'vitest';
import type { DeliveryLog } from '../../functions/core/ports.ts';

/** What every DeliveryLog does (DynamoDB on moto, serve's SQLite): a delivery id counts once. */
export const describeDeliveryLogContract = (
  name: string,
  makeLog: () => Promise<DeliveryLog>,
): void => {
  describe(`${name}: the DeliveryLog contract`, () => {
    it('answers true the first time an id is seen, false for a repeated delivery', async () => {
      // Prepare
      const log = await makeLog();

      // Act
      const first = await log.firstSeen('72d3162e-cc78-11e3-81ab-4c9367dc0958', 3600);
      const repeated = await log.firstSeen('72d3162e-cc78-11e3-81ab-4c9367dc0958', 3600);
      const other = await log.firstSeen('9a1b6d2e-0000-11e3-81ab-4c9367dc0958', 3600);

      // Assess
      expect([first, repeated, other]).toEqual([true, false, true]);
    });

    it('forgets an id once its time to live has passed', async () => {
      // Prepare
      const log = await makeLog();
      await log.firstSeen('expired-delivery', -10);

      // Act
      const again = await log.firstSeen('expired-delivery', 3600);

      // Assess
      expect(again).toBe(true);
    });
  });
};
