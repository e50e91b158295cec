import type {
  APIGatewayProxyEventV2WithIAMAuthorizer,
  APIGatewayProxyStructuredResultV2,
} from 'aws-lambda';
import { handlePipelinesApiRequest, MAX_SYNC_BODY_BYTES } from '../core/pipelines-api.ts';
import { logger } from '../observability.ts';
import { createPipelinesApiDependencies } from '../wiring/aws-pipelines-api.ts';
import { jsonResponse, requestBody, routePath } from './api-gateway-http.ts';

/**
 * API Gateway HTTP API (payload 2.0) → the shared pipelines API request function. The routes
 * (`PUT /pipelines`, `GET /pipelines/{ns}/{name}`, approvals and freezes) are IAM-authorised by
 * the stack: API Gateway
 * has checked the SigV4 signature and `execute-api:Invoke` before the function runs; the caller
 * is logged with each request.
 */
const deps = createPipelinesApiDependencies();

export const handler = async (
  event: APIGatewayProxyEventV2WithIAMAuthorizer,
): Promise<APIGatewayProxyStructuredResultV2> => {
  const started = performance.now();
  const method = event.requestContext.http.method;
  const path = routePath(event);
  const { body, truncated } = requestBody(event, MAX_SYNC_BODY_BYTES);
  // Approvals and freezes record who asked.
  const caller = event.requestContext.authorizer?.iam?.userArn;
  const result = await handlePipelinesApiRequest(
    {
      method,
      path,
      query: event.rawQueryString ?? '',
      body,
      bodyTruncated: truncated,
      ...(caller === undefined ? {} : { caller }),
    },
    deps,
  );
  logger.info('pipelines API request', {
    method,
    path,
    status: result.status,
    caller,
    bodyBytes: body.byteLength,
    latencyMs: Math.round(performance.now() - started),
  });
  return jsonResponse(result.status, result.body, result.headers);
};
