import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';

/**
 * A loopback stand-in for the stack's pipelines API behind API Gateway's IAM authoriser: every
 * request's SigV4 signature is checked as API Gateway checks it (the request signed again with
 * @smithy/signature-v4, the same static credentials and the request's own X-Amz-Date; 403
 * unless the signatures are the same), then answered from a small state: one pipeline whose
 * prod promotion awaits an approval, and the freezes, which POST /freeze and /unfreeze change.
 * The routes follow the pipelines API's contract (functions/core/pipelines-api.ts), under the
 * stage path `/prod`.
 */
export const STAND_IN_CREDENTIALS = {
  accessKeyId: 'AKIAUITESTEXAMPLE000',
  secretAccessKey: 'ui-test-secret-key/of-the-static-credentials',
} as const;

export interface ReceivedRequest {
  readonly method: string;
  readonly path: string;
  readonly body: string;
  readonly authorization: string | undefined;
  readonly verified: boolean;
}

export interface SignedApiStandIn {
  /** The API's base URL, stage included. */
  readonly url: string;
  readonly received: ReceivedRequest[];
  close(): Promise<void>;
}

export const readAll = async (request: IncomingMessage): Promise<Buffer> => {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
};

const AMZ_DATE = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;

/** The request signed again, as API Gateway checks it: true when the signature is the same. */
const verifySignature = async (
  request: IncomingMessage,
  body: Buffer,
  region: string,
): Promise<boolean> => {
  const authorization = request.headers.authorization ?? '';
  const date = request.headers['x-amz-date'];
  const signedHeaders = /SignedHeaders=([^,]+)/.exec(authorization)?.[1]?.split(';');
  if (typeof date !== 'string' || !AMZ_DATE.test(date) || signedHeaders === undefined) {
    return false;
  }
  const url = new URL(request.url ?? '/', `http://${request.headers.host}`);
  const headers: Record<string, string> = {};
  for (const name of signedHeaders) {
    const value = request.headers[name];
    if (typeof value === 'string') headers[name] = value;
  }
  const query: Record<string, string> = {};
  for (const [key, value] of url.searchParams) query[key] = value;
  const signer = new SignatureV4({
    service: 'execute-api',
    region,
    credentials: STAND_IN_CREDENTIALS,
    sha256: Hash.bind(null, 'sha256'),
  });
  const again = await signer.sign(
    {
      method: request.method ?? 'GET',
      protocol: 'http:',
      hostname: url.hostname,
      port: Number(url.port),
      path: url.pathname,
      query,
      headers,
      ...(body.byteLength === 0 ? {} : { body }),
    },
    { signingDate: new Date(date.replace(AMZ_DATE, '$1-$2-$3T$4:$5:$6Z')) },
  );
  return again.headers.authorization === authorization;
};

interface Freeze {
  pipeline?: string;
  environment?: string;
  reason: string;
  by: string;
  until?: string;
}

const APPROVER = 'arn:aws:iam::111122223333:user/ui-test';

export const startSignedApiStandIn = async (region: string): Promise<SignedApiStandIn> => {
  const received: ReceivedRequest[] = [];
  const freezes: Freeze[] = [];
  let approvedAt: string | undefined;
  const status = () => ({
    pipeline: 'flux-system/podinfo',
    namespace: 'flux-system',
    name: 'podinfo',
    app: { apiVersion: 'helm.toolkit.fluxcd.io/v2', kind: 'HelmRelease', name: 'podinfo' },
    environments: [
      { name: 'dev', targets: [{ name: 'dev', namespace: 'podinfo-dev', revision: '6.5.0' }] },
      {
        name: 'prod',
        targets: [{ name: 'prod', namespace: 'podinfo-prod' }],
        promotion: {
          state: approvedAt === undefined ? 'awaiting-approval' : 'queued',
          revision: '6.5.0',
          from: 'dev',
          approval: {
            requestedAt: '2026-11-20T16:05:00Z',
            ...(approvedAt === undefined ? {} : { approvedAt, approvedBy: APPROVER }),
          },
          timeline: { sourceDeployedAt: '2026-11-20T16:00:00Z' },
        },
      },
    ],
  });
  const answer = (method: string, path: string, body: string): [number, unknown] => {
    const payload = (): Record<string, unknown> => {
      try {
        return JSON.parse(body) as Record<string, unknown>;
      } catch {
        return {};
      }
    };
    if (method === 'GET' && path === '/prod/pipelines') return [200, { pipelines: [status()] }];
    if (method === 'GET' && path === '/prod/freezes') return [200, { freezes }];
    if (
      method === 'POST' &&
      path === '/prod/pipelines/flux-system/podinfo/environments/prod/approval'
    ) {
      if (approvedAt !== undefined) return [422, { error: 'nothing waits for an approval' }];
      approvedAt = new Date().toISOString();
      return [202, { approved: { revision: '6.5.0', approvedBy: APPROVER } }];
    }
    if (method === 'POST' && path === '/prod/freeze') {
      const { pipeline, environment, reason, until } = payload();
      if (typeof reason !== 'string' || reason === '') return [400, { error: 'reason: required' }];
      freezes.push({
        ...(typeof pipeline === 'string' ? { pipeline } : {}),
        ...(typeof environment === 'string' ? { environment } : {}),
        reason,
        by: APPROVER,
        ...(typeof until === 'string' ? { until } : {}),
      });
      return [201, { frozen: freezes.at(-1) }];
    }
    if (method === 'POST' && path === '/prod/unfreeze') {
      const { pipeline, environment } = payload();
      const at = freezes.findIndex(
        (freeze) => freeze.pipeline === pipeline && freeze.environment === environment,
      );
      if (at >= 0) freezes.splice(at, 1);
      return [200, { unfrozen: at >= 0 ? 1 : 0 }];
    }
    return [404, { message: 'Not Found' }];
  };
  const server: Server = createServer(async (request, response) => {
    const body = await readAll(request);
    const verified = await verifySignature(request, body, region);
    const path = new URL(request.url ?? '/', 'http://api.local').pathname;
    const text = body.toString('utf8');
    received.push({
      method: request.method ?? '',
      path,
      body: text,
      authorization: request.headers.authorization,
      verified,
    });
    const [code, json] = verified
      ? answer(request.method ?? '', path, text)
      : [403, { message: 'The request signature we calculated does not match' }];
    response.writeHead(code, { 'content-type': 'application/json' });
    response.end(JSON.stringify(json));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/prod`,
    received,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
};
