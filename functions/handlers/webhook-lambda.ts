import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { handleWebhookRequest, MAX_BODY_BYTES, normaliseHeaders } from '../core/webhook.ts';
import { logger } from '../observability.ts';
import { createWebhookDependencies } from '../wiring/aws-webhook.ts';
import { jsonResponse, requestBody, routePath } from './api-gateway-http.ts';

/** API Gateway HTTP API (payload 2.0) → the shared webhook request function. */
const deps = createWebhookDependencies();

export const handler = async (
  event: APIGatewayProxyEventV2,
): Promise<APIGatewayProxyStructuredResultV2> => {
  const started = performance.now();
  const { body, truncated } = requestBody(event, MAX_BODY_BYTES);
  const result = await handleWebhookRequest(
    {
      method: event.requestContext.http.method,
      path: routePath(event),
      headers: normaliseHeaders(event.headers),
      body,
      bodyTruncated: truncated,
    },
    deps,
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
