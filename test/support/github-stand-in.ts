/**
 * The GitHub Enterprise Server REST stand-in for tests, in parts under github-stand-in/:
 * stand-in.ts (the routes, state and helpers), shapes.ts (GitHub's JSON), webhooks.ts
 * (signed deliveries), faults.ts, rate-limit.ts, http.ts, and bare-merge.ts (merges in a bare
 * repository, which fake-github-enterprise.ts gives the stand-in).
 */

export { mergeableInBareRepository, mergeInBareRepository } from './github-stand-in/bare-merge.ts';
export { GitHubStandIn } from './github-stand-in/stand-in.ts';
export type * from './github-stand-in/types.ts';
export {
  type DeliveryMatch,
  type PingPayload,
  type PullRequestPayload,
  type PullRequestWebhookAction,
  signatureOf,
  WebhookDeliveries,
  type WebhookDelivery,
  type WebhookHook,
  type WebhookOptions,
} from './github-stand-in/webhooks.ts';
