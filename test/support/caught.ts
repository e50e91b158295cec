import { isPromoterError, type PromoterError } from '../../functions/core/errors.ts';

/** The PromoterError `promise` rejects with; anything else (or no rejection) fails the test. */
export const caught = async (promise: Promise<unknown>): Promise<PromoterError> => {
  try {
    await promise;
  } catch (error) {
    if (isPromoterError(error)) return error;
    throw error;
  }
  throw new Error('expected a PromoterError');
};
