import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { handleWebhookRequest, normaliseHeaders } from '../core/webhook.ts';
import { logger } from '../observability.ts';
import { createWebhookDependencies } from '../wiring/aws-webhook.ts';

/** API Gateway HTTP API (payload 2.0) → the shared webhook request function. */
const deps = createWebhookDependencies();

/** `rawPath` without a named stage's prefix (`$default` has none). */
const routePath = (event: APIGatewayProxyEventV2): string => {
  const stage = event.requestContext.stage;
  const prefix = `/${stage}`;
  return stage !== '$default' && event.rawPath.startsWith(`${prefix}/`)
    ? event.rawPath.slice(prefix.length)
    : event.rawPath;
};

export const handler = async (
  event: APIGatewayProxyEventV2,
): Promise<APIGatewayProxyStructuredResultV2> => {
  const started = performance.now();
  const body =
    event.body === undefined
      ? Buffer.alloc(0)
      : Buffer.from(event.body, event.isBase64Encoded ? 'base64' : 'utf8');
  const result = await handleWebhookRequest(
    {
      method: event.requestContext.http.method,
      path: routePath(event),
      headers: normaliseHeaders(event.headers),
      body,
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
  return {
    statusCode: result.status,
    headers: { 'content-type': 'application/json', ...result.headers },
    body: JSON.stringify(result.body),
  };
};
