import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import {
  GITHUB_WEBHOOK_PATH,
  handleGitHubWebhookRequest,
  MAX_GITHUB_BODY_BYTES,
} from '../core/github-webhook.ts';
import {
  GITLAB_WEBHOOK_PATH,
  handleGitLabWebhookRequest,
  MAX_GITLAB_BODY_BYTES,
} from '../core/gitlab-webhook.ts';
import { handleWebhookRequest, MAX_BODY_BYTES, normaliseHeaders } from '../core/webhook.ts';
import { logger } from '../observability.ts';
import { createWebhookDependencies } from '../wiring/aws-webhook.ts';
import { jsonResponse, requestBody, routePath } from './api-gateway-http.ts';

/**
 * API Gateway HTTP API (payload 2.0) → the shared webhook request functions: GitHub's
 * `POST /webhooks/github`, GitLab's `POST /webhooks/gitlab`, and Flux's for everything else
 * (its contract answers unknown paths).
 */
const deps = createWebhookDependencies();

export const handler = async (
  event: APIGatewayProxyEventV2,
): Promise<APIGatewayProxyStructuredResultV2> => {
  const started = performance.now();
  const path = routePath(event);
  if (path === GITHUB_WEBHOOK_PATH) {
    const { body, truncated } = requestBody(event, MAX_GITHUB_BODY_BYTES);
    const result = await handleGitHubWebhookRequest(
      {
        method: event.requestContext.http.method,
        path,
        headers: normaliseHeaders(event.headers),
        body,
        bodyTruncated: truncated,
      },
      deps.github,
    );
    logger.info('github webhook request', {
      status: result.status,
      outcome: result.outcome,
      delivery: event.headers['x-github-delivery'],
      latencyMs: Math.round(performance.now() - started),
    });
    return jsonResponse(result.status, result.body, result.headers);
  }
  if (path === GITLAB_WEBHOOK_PATH) {
    const { body, truncated } = requestBody(event, MAX_GITLAB_BODY_BYTES);
    const result = await handleGitLabWebhookRequest(
      {
        method: event.requestContext.http.method,
        path,
        headers: normaliseHeaders(event.headers),
        body,
        bodyTruncated: truncated,
      },
      deps.gitlab,
    );
    logger.info('gitlab webhook request', {
      status: result.status,
      outcome: result.outcome,
      delivery: event.headers['idempotency-key'] || event.headers['x-gitlab-event-uuid'],
      latencyMs: Math.round(performance.now() - started),
    });
    return jsonResponse(result.status, result.body, result.headers);
  }
  const { body, truncated } = requestBody(event, MAX_BODY_BYTES);
  const result = await handleWebhookRequest(
    {
      method: event.requestContext.http.method,
      path,
      headers: normaliseHeaders(event.headers),
      body,
      bodyTruncated: truncated,
    },
    deps.webhook,
  );
  logger.info('webhook request', {
    status: result.status,
    outcome: result.outcome,
    pipeline: result.pipeline,
    environment: result.environment,
    revision: result.revision,
    latencyMs: Math.round(performance.now() - started),
  });
  return jsonResponse(result.status, result.body, result.headers);
};
