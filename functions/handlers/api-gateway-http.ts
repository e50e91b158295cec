import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';

/** What both HTTP API (payload 2.0) handlers read from an event and write back. */
type HttpApiEvent = Pick<APIGatewayProxyEventV2, 'rawPath' | 'body' | 'isBase64Encoded'> & {
  readonly requestContext: Pick<APIGatewayProxyEventV2['requestContext'], 'stage'>;
};

/** `rawPath` without a named stage's prefix (`$default` has none). */
export const routePath = (event: HttpApiEvent): string => {
  const prefix = `/${event.requestContext.stage}`;
  return event.requestContext.stage !== '$default' && event.rawPath.startsWith(`${prefix}/`)
    ? event.rawPath.slice(prefix.length)
    : event.rawPath;
};

/**
 * The raw body bytes (base64 decoded when API Gateway encoded them), or `truncated` when over
 * `limit`; a base64 body far over the limit is not decoded at all.
 */
export const requestBody = (
  event: HttpApiEvent,
  limit: number,
): { body: Buffer; truncated: boolean } => {
  if (event.body === undefined) return { body: Buffer.alloc(0), truncated: false };
  if (event.isBase64Encoded && event.body.length > Math.ceil(limit / 3) * 4) {
    return { body: Buffer.alloc(0), truncated: true };
  }
  const body = Buffer.from(event.body, event.isBase64Encoded ? 'base64' : 'utf8');
  return { body, truncated: body.byteLength > limit };
};

export const jsonResponse = (
  status: number,
  body: unknown,
  headers: Readonly<Record<string, string>> = {},
): APIGatewayProxyStructuredResultV2 => ({
  statusCode: status,
  headers: { 'content-type': 'application/json', ...headers },
  body: JSON.stringify(body),
});
