/*
 * Metric names and dimensions (DESIGN.md section 9), shared by the code that emits them and the
 * stack's dashboard and alarms, so that the two cannot drift apart.
 */

export const METRICS_NAMESPACE = 'PipelinePromoter';

export const Metric = {
  PromotionLatency: 'PromotionLatency',
  PromotionsOpened: 'PromotionsOpened',
  PromotionsUpdated: 'PromotionsUpdated',
  PromotionsUpToDate: 'PromotionsUpToDate',
  PromotionsSuperseded: 'PromotionsSuperseded',
  PromotionsSettled: 'PromotionsSettled',
  PromotionsFailed: 'PromotionsFailed',
  PromotionsDropped: 'PromotionsDropped',
  PromotionsDeadLettered: 'PromotionsDeadLettered',
  /** The notification strategy handed a promotion over (DESIGN.md section 13). */
  PromotionsNotified: 'PromotionsNotified',
  /** Lifecycle notices that could not be delivered (the bus or serve's receiver failed). */
  NoticesFailed: 'NoticesFailed',
  WebhookRequests: 'WebhookRequests',
  Deployments: 'Deployments',
  /** Lifecycle (DESIGN.md section 10). */
  PromotionLeadTime: 'PromotionLeadTime',
  PullRequestMergeTime: 'PullRequestMergeTime',
  MergeToDeployTime: 'MergeToDeployTime',
  StalePullRequestsClosed: 'StalePullRequestsClosed',
  GitHubWebhookRequests: 'GitHubWebhookRequests',
  /** `POST /webhooks/gitlab`'s deliveries, counted like GitHub's (outcome a property). */
  GitLabWebhookRequests: 'GitLabWebhookRequests',
  /** DORA, by application through the EMF properties. */
  DeploymentFailures: 'DeploymentFailures',
  ReleaseLeadTime: 'ReleaseLeadTime',
  TimeToRestore: 'TimeToRestore',
  /** Gates (DESIGN.md section 10): promotions held by a gate, counted with the `Gate` dimension. */
  PromotionsWaiting: 'PromotionsWaiting',
  /** Milliseconds from a promotion's approval request to its approval. */
  ApprovalWaitTime: 'ApprovalWaitTime',
} as const;

export const Dimension = {
  Pipeline: 'Pipeline',
  Application: 'Application',
  Environment: 'Environment',
  Outcome: 'Outcome',
  Gate: 'Gate',
} as const;

/** `Gate` values of `PromotionsWaiting`: the kind of gate that holds a promotion. */
export const Gate = {
  Targets: 'targets',
  Soak: 'soak',
  Window: 'window',
  Freeze: 'freeze',
  Approval: 'approval',
} as const;

export type Gate = (typeof Gate)[keyof typeof Gate];

/** `Outcome` values of `WebhookRequests`. */
export const WebhookOutcome = {
  Accepted: 'accepted',
  /** A promoting event held at a gate (DESIGN.md section 11). */
  Waiting: 'waiting',
  /** `POST /approval/...` approved a promotion. */
  Approved: 'approved',
  Ignored: 'ignored',
  FinalEnvironment: 'final-environment',
  RejectedSignature: 'rejected-signature',
  RejectedInvalid: 'rejected-invalid',
  RejectedReplay: 'rejected-replay',
  NotFound: 'not-found',
  MethodNotAllowed: 'method-not-allowed',
  TooLarge: 'too-large',
  Unavailable: 'unavailable',
} as const;

export type WebhookOutcome = (typeof WebhookOutcome)[keyof typeof WebhookOutcome];
