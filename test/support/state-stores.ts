import {
  IN_MEMORY,
  openEmbeddedDatabase,
} from '../../functions/adapters/embedded/embedded-database.ts';
import { EmbeddedPromotionStateStore } from '../../functions/adapters/embedded/embedded-promotion-state-store.ts';

/** serve's state store on an in-memory database: the real rules, nothing on disk. */
export const inMemoryStateStore = (): EmbeddedPromotionStateStore =>
  new EmbeddedPromotionStateStore(openEmbeddedDatabase(IN_MEMORY));
