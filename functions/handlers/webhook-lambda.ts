import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { providerWebhookRoute } from '../core/provider-webhooks.ts';
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
  const provider = providerWebhookRoute(path, deps);
  if (provider !== undefined) {
    const { body, truncated } = requestBody(event, provider.maxBodyBytes);
    const headers = normaliseHeaders(event.headers);
    const result = await provider.handle({
      method: event.requestContext.http.method,
      path,
      headers,
      body,
      bodyTruncated: truncated,
    });
    logger.info(`${provider.provider} webhook request`, {
      status: result.status,
      outcome: result.outcome,
      delivery: provider.deliveryOf(headers),
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
