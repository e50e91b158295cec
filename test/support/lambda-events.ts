import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  DeleteMessageCommand,
  type Message,
  ReceiveMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type {
  APIGatewayProxyEventV2,
  APIGatewayProxyEventV2WithIAMAuthorizer,
  APIGatewayProxyStructuredResultV2,
  Context,
  SQSBatchResponse,
  SQSEvent,
} from 'aws-lambda';

/*
 * What AWS hands the Lambda handlers, for the tests that call them as a deploy would: API
 * Gateway's HTTP API events (payload 2.0), SQS events of the queue's real messages (moto), and a
 * loopback API Gateway in front of the webhook handler for the stand-ins' deliveries.
 */

export const LAMBDA_CONTEXT = { functionName: 'test', awsRequestId: 'req' } as Context;

/** An API Gateway HTTP API (payload 2.0) event, as the stack's routes hand it to the handler. */
export const apiGatewayEvent = (
  path: string,
  body: string,
  headers: Record<string, string>,
  options: { readonly base64?: boolean; readonly userAgent?: string } = {},
): APIGatewayProxyEventV2 => ({
  version: '2.0',
  routeKey: `POST ${path.startsWith('/webhooks/') ? path : '/promotion/{ns}/{name}/{env}'}`,
  rawPath: path,
  rawQueryString: '',
  // API Gateway hands header names on in lower case.
  headers: Object.fromEntries(
    Object.entries({ 'content-type': 'application/json', ...headers }).map(([name, value]) => [
      name.toLowerCase(),
      value,
    ]),
  ),
  requestContext: {
    accountId: '123456789012',
    apiId: 'api',
    domainName: 'api.example.com',
    domainPrefix: 'api',
    http: {
      method: 'POST',
      path,
      protocol: 'HTTP/1.1',
      sourceIp: '10.0.0.1',
      userAgent: options.userAgent ?? 'Go-http-client/1.1',
    },
    requestId: randomUUID(),
    routeKey: `POST ${path}`,
    stage: '$default',
    time: '01/Dec/2026:07:00:00 +0000',
    timeEpoch: Date.now(),
  },
  // A JSON body arrives as text; anything else base64-encoded.
  body: options.base64 === true ? Buffer.from(body).toString('base64') : body,
  isBase64Encoded: options.base64 === true,
});

/** `GET /pipelines/{ns}/{name}` as API Gateway hands it on after the IAM authoriser. */
export const iamStatusEvent = (
  ns: string,
  name: string,
): APIGatewayProxyEventV2WithIAMAuthorizer => ({
  version: '2.0',
  routeKey: 'GET /pipelines/{ns}/{name}',
  rawPath: `/pipelines/${ns}/${name}`,
  rawQueryString: '',
  headers: { accept: '*/*', 'user-agent': 'pipeline-promoter-cli' },
  pathParameters: { ns, name },
  requestContext: {
    accountId: '123456789012',
    apiId: 'api',
    authorizer: {
      iam: {
        accessKey: 'ASIAEXAMPLEKEY000000',
        accountId: '123456789012',
        callerId: 'AROAEXAMPLEROLE00000:promoter-status',
        cognitoIdentity: null,
        principalOrgId: 'o-example0000',
        userArn: 'arn:aws:sts::123456789012:assumed-role/pipeline-promoter/promoter-status',
        userId: 'AROAEXAMPLEROLE00000:promoter-status',
      },
    },
    domainName: 'api.example.com',
    domainPrefix: 'api',
    http: {
      method: 'GET',
      path: `/pipelines/${ns}/${name}`,
      protocol: 'HTTP/1.1',
      sourceIp: '203.0.113.10',
      userAgent: 'pipeline-promoter-cli',
    },
    requestId: randomUUID(),
    routeKey: 'GET /pipelines/{ns}/{name}',
    stage: '$default',
    time: '01/Dec/2026:07:00:00 +0000',
    timeEpoch: Date.now(),
  },
  isBase64Encoded: false,
});

/** The loopback stand-in of API Gateway: each POST becomes one call of `handle` (the webhook handler). */
export const startApiGatewayStandIn = async (
  handle: (event: APIGatewayProxyEventV2) => Promise<APIGatewayProxyStructuredResultV2>,
): Promise<{ server: Server; url: string }> => {
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(request.headers)) {
        if (typeof value === 'string') headers[name] = value;
      }
      const path = new URL(request.url ?? '/', 'http://api.example.com').pathname;
      const body = Buffer.concat(chunks).toString('utf8');
      handle(apiGatewayEvent(path, body, headers, { userAgent: headers['user-agent'] ?? '' }))
        .then((result) => {
          response.writeHead(result.statusCode ?? 200, {
            ...(result.headers as Record<string, string>),
          });
          response.end(result.body);
        })
        .catch((error: unknown) => {
          response.writeHead(500, { 'content-type': 'text/plain' });
          response.end(String(error));
        });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { server, url: `http://127.0.0.1:${port}` };
};

/** The queue's messages now (no wait), with their attributes. */
export const receiveMessages = async (sqs: SQSClient, queueUrl: string): Promise<Message[]> =>
  (
    await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queueUrl,
        MaxNumberOfMessages: 10,
        MessageSystemAttributeNames: ['All'],
        WaitTimeSeconds: 0,
      }),
    )
  ).Messages ?? [];

/** The SQS event the event source mapping hands the worker for `messages`. */
export const sqsEventOf = (
  messages: Message[],
  queueArn = 'arn:aws:sqs:us-east-1:123456789012:jobs.fifo',
): SQSEvent => ({
  Records: messages.map((message) => ({
    messageId: message.MessageId as string,
    receiptHandle: message.ReceiptHandle as string,
    body: message.Body as string,
    attributes: {
      ApproximateReceiveCount: message.Attributes?.ApproximateReceiveCount ?? '1',
      SentTimestamp: message.Attributes?.SentTimestamp ?? '0',
      SenderId: 'sender',
      ApproximateFirstReceiveTimestamp: '0',
      MessageGroupId: message.Attributes?.MessageGroupId as string,
      MessageDeduplicationId: message.Attributes?.MessageDeduplicationId as string,
      SequenceNumber: message.Attributes?.SequenceNumber as string,
    },
    messageAttributes: {},
    md5OfBody: message.MD5OfBody as string,
    eventSource: 'aws:sqs',
    eventSourceARN: queueArn,
    awsRegion: 'us-east-1',
  })),
});

/** What the SQS event source mapping does: receive, call the worker, delete what succeeded. */
export const runQueuedJobs = async (
  sqs: SQSClient,
  queueUrl: string,
  worker: (event: SQSEvent, context: Context) => Promise<SQSBatchResponse>,
) => {
  const messages = await receiveMessages(sqs, queueUrl);
  const result = await worker(sqsEventOf(messages), LAMBDA_CONTEXT);
  const failed = new Set(result.batchItemFailures.map((failure) => failure.itemIdentifier));
  for (const message of messages.filter((one) => !failed.has(one.MessageId as string))) {
    await sqs.send(
      new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: message.ReceiptHandle }),
    );
  }
  return { messages, failures: result.batchItemFailures };
};
