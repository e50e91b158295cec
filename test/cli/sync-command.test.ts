import { createHash, createHmac } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { canonicalJson } from '../../functions/adapters/dynamodb-pipeline-store.ts';
import { apiUrl, signingRegion } from '../../functions/cli/aws-signed-client.ts';
import { silentLogger } from '../../functions/core/logger.ts';
import { type Pipeline, type PipelineRef, pipelineId } from '../../functions/core/pipeline.ts';
import { handlePipelinesApiRequest } from '../../functions/core/pipelines-api.ts';
import type { PipelinePutResult, PipelineRegistry } from '../../functions/core/ports.ts';
import { readFixture } from '../support/fixtures.ts';
import { type PromoterRun, runPromoter } from '../support/promoter-cli.ts';
import { inMemoryStateStore } from '../support/state-stores.ts';

/**
 * `promoter sync` and `promoter status` as a user runs them (a child process), against a local
 * HTTP server that checks the SigV4 Authorization header independently of the signer (the
 * canonical request, string to sign and signing key of the AWS documentation), then answers
 * with the real pipelines API request function over in-memory stores.
 */
const ACCESS_KEY = 'AKIAPROMOTERTEST0001';
const SECRET_KEY = 'promoter/test/secret+key/0000000000000000';
const REGION = 'eu-west-1';

class MemoryRegistry implements PipelineRegistry {
  readonly stored = new Map<string, Pipeline>();
  async get(ref: PipelineRef) {
    return this.stored.get(pipelineId(ref));
  }
  async list() {
    return [...this.stored.values()];
  }
  async put(pipeline: Pipeline): Promise<PipelinePutResult> {
    const current = this.stored.get(pipelineId(pipeline));
    if (current !== undefined && canonicalJson(current) === canonicalJson(pipeline))
      return 'unchanged';
    this.stored.set(pipelineId(pipeline), pipeline);
    return current === undefined ? 'created' : 'updated';
  }
  async delete(ref: PipelineRef) {
    return this.stored.delete(pipelineId(ref));
  }
}

interface Received {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingMessage['headers'];
  readonly body: Buffer;
  /** Why the signature is not valid, or undefined when it is. */
  readonly signatureProblem: string | undefined;
}

const sha256Hex = (data: Buffer | string): string =>
  createHash('sha256').update(data).digest('hex');
const hmac = (key: Buffer | string, data: string): Buffer =>
  createHmac('sha256', key).update(data).digest();
const uriEncode = (text: string): string =>
  encodeURIComponent(text).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );

const AUTHORIZATION =
  /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([a-z0-9-]+)\/execute-api\/aws4_request, SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$/;

/** SigV4 checked from the AWS documentation, not with the signer the CLI uses. */
const signatureProblem = (
  method: string,
  url: URL,
  headers: IncomingMessage['headers'],
  body: Buffer,
): string | undefined => {
  const authorization = headers.authorization;
  if (authorization === undefined) return 'no Authorization header';
  const match = AUTHORIZATION.exec(authorization);
  if (match === null) return `malformed Authorization header: ${authorization}`;
  const [, accessKey, date, region, signedHeaderList, signature] = match as unknown as string[];
  if (accessKey !== ACCESS_KEY) return `unexpected access key ${accessKey}`;
  const amzDate = String(headers['x-amz-date']);
  if (!/^\d{8}T\d{6}Z$/.test(amzDate) || !amzDate.startsWith(date as string))
    return `bad X-Amz-Date ${amzDate}`;
  if (
    Math.abs(
      Date.parse(
        `${amzDate.slice(0, 4)}-${amzDate.slice(4, 6)}-${amzDate.slice(6, 8)}T${amzDate.slice(9, 11)}:${amzDate.slice(11, 13)}:${amzDate.slice(13, 15)}Z`,
      ) - Date.now(),
    ) >
    5 * 60_000
  ) {
    return 'X-Amz-Date more than 5 minutes away';
  }
  const signed = (signedHeaderList as string).split(';');
  for (const required of ['host', 'x-amz-date'])
    if (!signed.includes(required)) return `${required} not signed`;
  if (headers['x-amz-security-token'] !== undefined && !signed.includes('x-amz-security-token'))
    return 'session token not signed';
  const payloadHash = sha256Hex(body);
  const declared = headers['x-amz-content-sha256'];
  if (declared !== undefined && declared !== payloadHash)
    return 'x-amz-content-sha256 is not the body hash';
  const canonicalQuery = [...url.searchParams]
    .map(([key, value]) => [uriEncode(key), uriEncode(value)] as const)
    .sort(([a, x], [b, y]) => (a === b ? (x < y ? -1 : 1) : a < b ? -1 : 1))
    .map(([key, value]) => `${key}=${value}`)
    .join('&');
  const canonicalPath = url.pathname
    .split('/')
    .map((segment) => uriEncode(segment))
    .join('/');
  const canonicalHeaders = signed
    .map(
      (name) =>
        `${name}:${String(headers[name] ?? '')
          .trim()
          .replace(/\s+/g, ' ')}\n`,
    )
    .join('');
  const canonicalRequest = [
    method,
    canonicalPath,
    canonicalQuery,
    canonicalHeaders,
    signedHeaderList,
    payloadHash,
  ].join('\n');
  const scope = `${date}/${region}/execute-api/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256Hex(canonicalRequest)].join('\n');
  const key = hmac(
    hmac(hmac(hmac(`AWS4${SECRET_KEY}`, date as string), region as string), 'execute-api'),
    'aws4_request',
  );
  const expected = createHmac('sha256', key).update(stringToSign).digest('hex');
  return expected === signature ? undefined : 'signature does not match the canonical request';
};

let server: Server;
let api: string;
let folder: string;
const received: Received[] = [];
const registry = new MemoryRegistry();
const state = inMemoryStateStore();
/** Statuses to answer before the real answer (fault injection), first first. */
const faults: number[] = [];
let requireSignature = true;

beforeAll(async () => {
  folder = await mkdtemp(join(tmpdir(), 'promoter-sync-cli-'));
  server = createServer(async (request, response) => {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    const url = new URL(request.url ?? '/', `http://${request.headers.host}`);
    const method = request.method ?? 'GET';
    const problem = signatureProblem(method, url, request.headers, body);
    received.push({
      method,
      url: `${url.pathname}${url.search}`,
      headers: request.headers,
      body,
      signatureProblem: problem,
    });
    const send = (status: number, answer: unknown) => {
      response.writeHead(status, { 'content-type': 'application/json' });
      response.end(JSON.stringify(answer));
    };
    const fault = faults.shift();
    if (fault !== undefined)
      return send(fault, { message: fault === 403 ? 'Forbidden' : 'Service Unavailable' });
    // API Gateway's IAM authoriser: an unsigned or badly signed request never reaches the function.
    if (requireSignature && problem !== undefined) return send(403, { message: 'Forbidden' });
    const result = await handlePipelinesApiRequest(
      { method, path: url.pathname, query: url.search.slice(1), body },
      { pipelines: registry, registry, state, logger: silentLogger },
    );
    send(result.status, result.body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  api = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});
beforeEach(() => {
  received.length = 0;
  faults.length = 0;
  registry.stored.clear();
  requireSignature = true;
});

/** `promoter ARGS` in a child process with static credentials and nothing else from AWS. */
const promoter = (
  args: string[],
  options: { env?: Record<string, string>; stdin?: string } = {},
): Promise<PromoterRun> =>
  runPromoter(args, {
    env: {
      HOME: folder,
      AWS_ACCESS_KEY_ID: ACCESS_KEY,
      AWS_SECRET_ACCESS_KEY: SECRET_KEY,
      AWS_EC2_METADATA_DISABLED: 'true',
      AWS_CONFIG_FILE: join(folder, 'no-config'),
      AWS_SHARED_CREDENTIALS_FILE: join(folder, 'no-credentials'),
      ...options.env,
    },
    ...(options.stdin === undefined ? {} : { stdin: options.stdin }),
  });

const FIXTURES_TEXT = [
  'invalid-no-hmac.yaml',
  'list-from-kubectl.yaml',
  'podinfo.yaml',
  'search-rfc-draft.yaml',
]
  .map((file) => readFixture(`pipelines/${file}`))
  .join('\n---\n');

describe('promoter sync', () => {
  it('PUTs the file SigV4-signed, prints the summary, exits 1 on an invalid pipeline', async () => {
    // Prepare
    const file = join(folder, 'pipelines.yaml');
    await writeFile(file, FIXTURES_TEXT);

    // Act
    const run = await promoter(['sync', '-f', file, '--api', `${api}/`, '--region', REGION]);

    // Assess
    expect(run.stderr).toBe('');
    expect(run.code).toBe(1);
    expect(received).toHaveLength(1);
    const [request] = received;
    expect(request).toMatchObject({
      method: 'PUT',
      url: '/pipelines',
      signatureProblem: undefined,
    });
    expect(request?.headers.authorization).toMatch(
      new RegExp(
        `^AWS4-HMAC-SHA256 Credential=${ACCESS_KEY}/\\d{8}/${REGION}/execute-api/aws4_request, SignedHeaders=[a-z0-9;-]*host[a-z0-9;-]*, Signature=[0-9a-f]{64}$`,
      ),
    );
    expect(request?.headers['content-type']).toBe('application/yaml');
    expect(request?.body.toString('utf8')).toBe(FIXTURES_TEXT);
    expect(run.stdout).toContain(
      'pipelines: 3 created, 0 updated, 0 unchanged, 0 deleted, 1 invalid',
    );
    expect(run.stdout).toContain('  created    flux-system/podinfo');
    expect(run.stdout).toMatch(
      / {2}invalid {4}flux-system\/nohmac\n {15}- spec\.promotion\.strategy\.secretRef: expected the secret holding the webhook HMAC key/,
    );
    expect([...registry.stored.keys()].sort()).toEqual([
      'flux-system/apps',
      'flux-system/podinfo',
      'shopping/search',
    ]);
  });

  it('reads standard input, signs ?prune=true and a session token, region from AWS_REGION; exits 0', async () => {
    // Prepare
    await promoter(['sync', '-f', '-', '--api', api, '--region', REGION], { stdin: FIXTURES_TEXT });
    received.length = 0;
    const input = JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [] });

    // Act
    const run = await promoter(['sync', '-f', '-', '--api', api, '--prune'], {
      stdin: input,
      env: { AWS_REGION: 'us-west-2', AWS_SESSION_TOKEN: 'session/token+value==' },
    });

    // Assess
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(received).toHaveLength(1);
    expect(received[0]).toMatchObject({
      url: '/pipelines?prune=true',
      signatureProblem: undefined,
    });
    expect(received[0]?.headers['x-amz-security-token']).toBe('session/token+value==');
    expect(received[0]?.headers.authorization).toContain('/us-west-2/execute-api/aws4_request');
    expect(received[0]?.headers['content-type']).toBe('application/json');
    expect(run.stdout).toContain(
      'pipelines: 0 created, 0 updated, 0 unchanged, 3 deleted, 0 invalid',
    );
    expect(run.stdout).toContain('  deleted    shopping/search');
  });

  it('a request signed with the wrong secret is refused: exit 2 with the status and the API message', async () => {
    // Prepare
    const env = { AWS_SECRET_ACCESS_KEY: 'not-the-secret' };

    // Act
    const run = await promoter(['sync', '-f', '-', '--api', api, '--region', REGION], {
      stdin: FIXTURES_TEXT,
      env,
    });

    // Assess
    expect(received.map((request) => request.signatureProblem)).toEqual([
      'signature does not match the canonical request',
    ]);
    expect(registry.stored.size).toBe(0);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(
      `promoter sync: PUT ${api}/pipelines answered 403: Forbidden (the caller needs execute-api:Invoke`,
    );
    expect(run.stdout).toBe('');
  });

  it('a 503 is retried, signed afresh', async () => {
    // Prepare
    faults.push(503);

    // Act
    const run = await promoter(['sync', '-f', '-', '--api', api, '--region', REGION], {
      stdin: readFixture('pipelines/podinfo.yaml'),
    });

    // Assess
    expect(run.code).toBe(0);
    expect(received.map((request) => request.signatureProblem)).toEqual([undefined, undefined]);
    expect(run.stdout).toContain('1 created');
  });

  it('refuses an empty input and an unknown region before sending anything', async () => {
    // Prepare: nothing

    // Act
    const empty = await promoter(['sync', '-f', '-', '--api', api, '--region', REGION], {
      stdin: '\n',
    });
    const noRegion = await promoter(['sync', '-f', '-', '--api', api], { stdin: FIXTURES_TEXT });

    // Assess
    expect(empty.code).toBe(2);
    expect(empty.stderr).toContain('standard input is empty: nothing sent');
    expect(noRegion.code).toBe(2);
    expect(noRegion.stderr).toContain('cannot tell the AWS region of 127.0.0.1');
    expect(received).toHaveLength(0);
  });
});

describe('promoter status', () => {
  it('on a loopback URL: unsigned GET, printed as a table with failure reasons; 404: exit 1', async () => {
    // Prepare
    requireSignature = false;
    await promoter(['sync', '-f', '-', '--api', api, '--region', REGION], { stdin: FIXTURES_TEXT });
    received.length = 0;
    const ref = { namespace: 'flux-system', name: 'podinfo' };
    await state.recordDeployment({
      pipeline: ref,
      environment: 'dev',
      revision: '6.5.0',
      eventTimestamp: '2026-11-20T16:00:00Z',
      recordedAt: '2026-11-20T16:00:01.000Z',
    });
    await state.recordDeployment({
      pipeline: ref,
      environment: 'staging',
      revision: '6.5.0',
      eventTimestamp: '2026-11-20T16:05:00Z',
      recordedAt: '2026-11-20T16:05:01.000Z',
    });
    await state.putPromotion({
      pipeline: ref,
      environment: 'staging',
      revision: '6.5.0',
      state: 'up-to-date',
      jobId: 'a',
      from: 'dev',
      eventTimestamp: '2026-11-20T16:00:00.000Z',
      updatedAt: '2026-11-20T16:00:09.000Z',
    });
    await state.putPromotion({
      pipeline: ref,
      environment: 'prod',
      revision: '6.5.0',
      state: 'failed',
      jobId: 'b',
      from: 'staging',
      eventTimestamp: '2026-11-20T16:05:00.000Z',
      updatedAt: '2026-11-20T16:05:07.000Z',
      failure: {
        code: 'NO_MARKER',
        message: 'no marker # {"$promotion": "flux-system:podinfo:prod"} in fleet-prod',
      },
    });

    // Act
    const run = await promoter(['status', 'flux-system/podinfo', '--api', api]);
    const unknown = await promoter(['status', 'flux-system/nope', '--api', api]);

    // Assess
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(received[0]).toMatchObject({ method: 'GET', url: '/pipelines/flux-system/podinfo' });
    expect(received[0]?.headers.authorization).toBeUndefined();
    expect(run.stdout).toBe(
      [
        'flux-system/podinfo (HelmRelease podinfo)',
        '',
        'dev: runs 6.5.0',
        'staging: runs 6.5.0; 6.5.0 is on the base branch, waiting for staging to deploy it',
        // Two targets, and a deployment recorded without one: neither is known to run it.
        '  targets: staging/podinfo-qa -, staging/podinfo-perf -',
        'prod: nothing seen yet; 6.5.0 failed: NO_MARKER',
        '',
        'ENVIRONMENT  DEPLOYED  PROMOTION  STATE       PULL REQUEST  UPDATED',
        'dev          6.5.0     -          -           -             2026-11-20T16:00:01Z',
        'staging      6.5.0     6.5.0      up-to-date  -             2026-11-20T16:05:01Z',
        'prod         -         6.5.0      failed      -             2026-11-20T16:05:07Z',
        '',
        'prod: failed NO_MARKER: no marker # {"$promotion": "flux-system:podinfo:prod"} in fleet-prod',
        '',
      ].join('\n'),
    );
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('pipeline flux-system/nope not found');
  });
});

describe('signing region and API URL', () => {
  it('takes --region, else the execute-api host region, else AWS_REGION', () => {
    // Prepare
    const host = new URL('https://a1b2c3d4e5.execute-api.ap-southeast-2.amazonaws.com/pipelines');
    const custom = new URL('https://promoter.example.com/pipelines');

    // Act
    const regions = [
      signingRegion(host, 'eu-central-1', { AWS_REGION: 'us-east-1' }),
      signingRegion(host, undefined, { AWS_REGION: 'us-east-1' }),
      signingRegion(custom, undefined, { AWS_REGION: 'us-east-1' }),
      signingRegion(custom, undefined, { AWS_DEFAULT_REGION: 'sa-east-1' }),
    ];

    // Assess
    expect(regions).toEqual(['eu-central-1', 'ap-southeast-2', 'us-east-1', 'sa-east-1']);
    expect(() => signingRegion(custom, undefined, {})).toThrow(/pass --region or set AWS_REGION/);
  });

  it('joins the base URL and the route; refuses plain http to a non-loopback host', () => {
    // Prepare: nothing

    // Act
    const joined = apiUrl('https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com/', '/pipelines');
    const staged = apiUrl('https://api.example.com/prod', '/pipelines');

    // Assess
    expect(joined.href).toBe('https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com/pipelines');
    expect(staged.href).toBe('https://api.example.com/prod/pipelines');
    expect(() => apiUrl('http://api.example.com', '/pipelines')).toThrow(/https:\/\//);
    expect(() => apiUrl('not a url', '/pipelines')).toThrow(/--api/);
  });
});
