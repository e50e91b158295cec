import { MemoryPromotionStateStore } from '../../functions/adapters/memory-promotion-state-store.ts';
import { describePromotionStateStoreContract } from './promotion-state-store.contract.ts';

describePromotionStateStoreContract(
  'MemoryPromotionStateStore',
  async () => new MemoryPromotionStateStore(),
);
