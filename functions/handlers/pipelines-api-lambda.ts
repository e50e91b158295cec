import type {
  APIGatewayProxyEventV2WithIAMAuthorizer,
  APIGatewayProxyStructuredResultV2,
} from 'aws-lambda';
import { handlePipelinesApiRequest, MAX_SYNC_BODY_BYTES } from '../core/pipelines-api.ts';
import { logger } from '../observability.ts';
import { createPipelinesApiDependencies } from '../wiring/aws-pipelines-api.ts';

/**
 * API Gateway HTTP API (payload 2.0) → the shared pipelines API request function. The routes
 * (`PUT /pipelines`, `GET /pipelines/{ns}/{name}`) are IAM-authorised by the stack: API Gateway
 * has checked the SigV4 signature and `execute-api:Invoke` before the function runs; the caller
 * is logged with each request.
 */
const deps = createPipelinesApiDependencies();

/** `rawPath` without a named stage's prefix (`$default` has none). */
const routePath = (event: APIGatewayProxyEventV2WithIAMAuthorizer): string => {
  const stage = event.requestContext.stage;
  const prefix = `/${stage}`;
  return stage !== '$default' && event.rawPath.startsWith(`${prefix}/`)
    ? event.rawPath.slice(prefix.length)
    : event.rawPath;
};

const decodeBody = (
  event: APIGatewayProxyEventV2WithIAMAuthorizer,
): { body: Buffer; truncated: boolean } => {
  if (event.body === undefined) return { body: Buffer.alloc(0), truncated: false };
  // A base64 body decodes to 3/4 of its length: do not decode one far over the limit.
  if (event.isBase64Encoded && event.body.length > Math.ceil(MAX_SYNC_BODY_BYTES / 3) * 4) {
    return { body: Buffer.alloc(0), truncated: true };
  }
  const body = Buffer.from(event.body, event.isBase64Encoded ? 'base64' : 'utf8');
  return { body, truncated: body.byteLength > MAX_SYNC_BODY_BYTES };
};

export const handler = async (
  event: APIGatewayProxyEventV2WithIAMAuthorizer,
): Promise<APIGatewayProxyStructuredResultV2> => {
  const started = performance.now();
  const method = event.requestContext.http.method;
  const path = routePath(event);
  const { body, truncated } = decodeBody(event);
  const result = await handlePipelinesApiRequest(
    {
      method,
      path,
      query: event.rawQueryString ?? '',
      body,
      bodyTruncated: truncated,
    },
    deps,
  );
  logger.info('pipelines API request', {
    method,
    path,
    status: result.status,
    caller: event.requestContext.authorizer?.iam?.userArn,
    bodyBytes: body.byteLength,
    latencyMs: Math.round(performance.now() - started),
  });
  return {
    statusCode: result.status,
    headers: { 'content-type': 'application/json', ...result.headers },
    body: JSON.stringify(result.body),
  };
};
