import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { HttpNotices } from '../../functions/adapters/http-notices.ts';
import type { Pipeline } from '../../functions/core/pipeline.ts';
import { parsePipelineManifests } from '../../functions/core/pipeline-manifest.ts';
import type { PromotionNotice } from '../../functions/core/ports.ts';
import { promoteNotice } from '../../functions/core/promotion-notices.ts';
import { SIGNATURE_HEADER, verifySignature } from '../../functions/core/signature.ts';
import { caught } from '../support/caught.ts';
import { FIXTURE_HMAC_KEY, readFixture } from '../support/fixtures.ts';
import { testJob } from '../support/jobs.ts';
import { FIXTURE_SECRETS, memorySecrets } from '../support/webhook-harness.ts';

/**
 * HttpNotices against a real loopback receiver that checks each POST the way a Flux
 * generic-hmac receiver does: the `X-Signature` of the raw body bytes, verified with the
 * project's own verifier (core/signature.ts) and the pipeline's `hmac-key`.
 */

const AT = new Date('2026-11-02T10:05:00Z');

const podinfo = (): Pipeline => {
  const [pipeline] = parsePipelineManifests(readFixture('pipelines/podinfo.yaml')).pipelines;
  if (pipeline === undefined) throw new Error('the podinfo fixture holds no pipeline');
  return pipeline;
};

const handOff = (): PromotionNotice => promoteNotice(podinfo(), testJob('prod', '6.5.0'), AT);

interface Received {
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingMessage['headers'];
  readonly body: Buffer;
  readonly signatureValid: boolean;
}

interface Receiver {
  readonly url: string;
  readonly received: Received[];
  close(): Promise<void>;
}

type Answer = (request: Received, response: ServerResponse) => void;

const ok: Answer = (_request, response) => {
  response.writeHead(200, { 'content-type': 'application/json' });
  response.end('{"ok":true}');
};

const receivers: Receiver[] = [];
afterEach(async () => {
  await Promise.all(receivers.splice(0).map((receiver) => receiver.close()));
});

/** A loopback receiver that records every POST and answers it with `answer`. */
const startReceiver = async (answer: Answer = ok): Promise<Receiver> => {
  const received: Received[] = [];
  const server: Server = createServer(async (request, response) => {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    const header = request.headers[SIGNATURE_HEADER];
    const entry: Received = {
      method: request.method ?? '',
      path: request.url ?? '',
      headers: request.headers,
      body,
      signatureValid: verifySignature(body, Array.isArray(header) ? header[0] : header, [
        FIXTURE_HMAC_KEY,
      ]).valid,
    };
    received.push(entry);
    answer(entry, response);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const receiver: Receiver = {
    url: `http://127.0.0.1:${port}/hooks/promotions`,
    received,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  receivers.push(receiver);
  return receiver;
};

const status =
  (code: number, headers: Record<string, string> = {}): Answer =>
  (_request, response) => {
    response.writeHead(code, { 'content-type': 'text/plain', ...headers });
    response.end(`answered ${code}`);
  };

/** The notify URL as errors show it: the origin, the path elided. */
const shownUrl = (url: string): string => `${new URL(url).origin}/…`;

describe('HttpNotices', () => {
  it('POSTs the body as JSON, signed like Flux generic-hmac with the hmac-key, and names the notice', async () => {
    // Prepare
    const receiver = await startReceiver();
    const notices = new HttpNotices({ url: receiver.url, secrets: memorySecrets(FIXTURE_SECRETS) });
    const notice = handOff();

    // Act
    await notices.publish(notice);

    // Assess
    expect(receiver.received).toHaveLength(1);
    const [request] = receiver.received;
    expect(request).toMatchObject({
      method: 'POST',
      path: '/hooks/promotions',
      signatureValid: true,
    });
    expect(request?.headers).toMatchObject({
      'content-type': 'application/json',
      'x-promoter-notice': 'Promotion',
      'user-agent': 'pipeline-promoter',
      'x-signature': expect.stringMatching(/^sha256=[0-9a-f]{64}$/),
    });
    expect(JSON.parse(request?.body.toString('utf8') ?? '')).toEqual(
      JSON.parse(JSON.stringify(notice.body)),
    );
  });

  it('signs with the current hmac-key when the secret also holds the previous one', async () => {
    // Prepare
    const receiver = await startReceiver();
    const secrets = memorySecrets({
      'flux-system/promotion-credentials': {
        'hmac-key': FIXTURE_HMAC_KEY,
        'hmac-key-previous': 'the-previous-hmac-key-of-the-tests',
      },
    });

    // Act
    await new HttpNotices({ url: receiver.url, secrets }).publish(handOff());

    // Assess
    expect(receiver.received.map((request) => request.signatureValid)).toEqual([true]);
  });

  it('is unavailable (retryable) on a 500, with the Retry-After it was given', async () => {
    // Prepare
    const receiver = await startReceiver(status(503, { 'retry-after': '120' }));
    const notices = new HttpNotices({ url: receiver.url, secrets: memorySecrets(FIXTURE_SECRETS) });

    // Act
    const error = await caught(notices.publish(handOff()));

    // Assess
    expect(error).toMatchObject({
      code: 'NOTICE_UNAVAILABLE',
      retryable: true,
      data: { status: 503, retryAfterSeconds: 120, url: shownUrl(receiver.url) },
    });
    expect(error.message).toContain(`${shownUrl(receiver.url)} answered 503`);
  });

  it('is unavailable (retryable) on 408, 429 and 500', async () => {
    // Prepare
    const codes = [408, 429, 500];
    const receiver = await startReceiver((request, response) =>
      status(codes[receiver.received.indexOf(request)] ?? 500)(request, response),
    );
    const notices = new HttpNotices({ url: receiver.url, secrets: memorySecrets(FIXTURE_SECRETS) });

    // Act
    const errors = [];
    for (const _code of codes) errors.push(await caught(notices.publish(handOff())));

    // Assess
    expect(errors.map((error) => [error.code, error.retryable, error.data.status])).toEqual([
      ['NOTICE_UNAVAILABLE', true, 408],
      ['NOTICE_UNAVAILABLE', true, 429],
      ['NOTICE_UNAVAILABLE', true, 500],
    ]);
  });

  it('is rejected (permanent) on a 400, naming the status and the URL without its credentials', async () => {
    // Prepare
    const receiver = await startReceiver(status(400));
    const withCredentials = receiver.url
      .replace('http://', 'http://jenkins:s3cret-password@')
      .concat('?token=s3cret-query-token');
    const notices = new HttpNotices({
      url: withCredentials,
      secrets: memorySecrets(FIXTURE_SECRETS),
    });

    // Act
    const error = await caught(notices.publish(handOff()));

    // Assess
    expect(error).toMatchObject({
      code: 'NOTICE_REJECTED',
      retryable: false,
      data: { status: 400, url: shownUrl(receiver.url) },
    });
    expect(error.message).toContain(`${shownUrl(receiver.url)} answered 400`);
    const shown = JSON.stringify({ message: error.message, data: error.data });
    expect(shown).not.toContain('s3cret');
    // Chat webhooks keep their secret in the path: it is not shown either.
    expect(shown).not.toContain('/hooks/promotions');
    expect(receiver.received).toHaveLength(1);
  });

  it('is rejected (permanent) on a redirect, and does not follow it', async () => {
    // Prepare
    const elsewhere = await startReceiver();
    const receiver = await startReceiver(status(307, { location: elsewhere.url }));
    const notices = new HttpNotices({ url: receiver.url, secrets: memorySecrets(FIXTURE_SECRETS) });

    // Act
    const error = await caught(notices.publish(handOff()));

    // Assess
    expect(error).toMatchObject({ code: 'NOTICE_REJECTED', data: { status: 307 } });
    expect(elsewhere.received).toEqual([]);
  });

  it('is unavailable (retryable) when the receiver does not answer in time', async () => {
    // Prepare: a receiver that reads the POST and never answers.
    const receiver = await startReceiver(() => undefined);
    const notices = new HttpNotices({
      url: receiver.url,
      secrets: memorySecrets(FIXTURE_SECRETS),
      timeoutMs: 200,
    });

    // Act
    const error = await caught(notices.publish(handOff()));

    // Assess
    expect(error).toMatchObject({
      code: 'NOTICE_UNAVAILABLE',
      retryable: true,
      data: { timeoutMs: 200 },
    });
    expect(error.message).toContain('no answer within 200 ms');
  });

  it('is unavailable (retryable) when nothing listens', async () => {
    // Prepare
    const receiver = await startReceiver();
    await receiver.close();
    const notices = new HttpNotices({ url: receiver.url, secrets: memorySecrets(FIXTURE_SECRETS) });

    // Act
    const error = await caught(notices.publish(handOff()));

    // Assess
    expect(error).toMatchObject({ code: 'NOTICE_UNAVAILABLE', retryable: true });
    expect(error.message).toContain('ECONNREFUSED');
  });

  it('refuses to sign with a secret that has no shared hmac-key, naming the secret and the key only', async () => {
    // Prepare
    const receiver = await startReceiver();
    const secrets = memorySecrets({
      'flux-system/promotion-credentials': {
        'hmac-key-dev': 'a-dev-only-key-of-the-tests',
        token: 'gh-token',
      },
    });

    // Act
    const error = await caught(new HttpNotices({ url: receiver.url, secrets }).publish(handOff()));

    // Assess
    expect(error).toMatchObject({
      code: 'INVALID_SECRET',
      retryable: false,
      data: { secret: 'flux-system/promotion-credentials', key: 'hmac-key' },
    });
    expect(error.message).toContain('secret flux-system/promotion-credentials has no hmac-key');
    expect(JSON.stringify({ message: error.message, data: error.data })).not.toMatch(
      /a-dev-only-key|gh-token/,
    );
    expect(receiver.received).toEqual([]);
  });

  it('passes on what the secret store throws', async () => {
    // Prepare
    const receiver = await startReceiver();

    // Act
    const error = await caught(
      new HttpNotices({ url: receiver.url, secrets: memorySecrets({}) }).publish(handOff()),
    );

    // Assess
    expect(error.code).toBe('SECRET_NOT_FOUND');
    expect(receiver.received).toEqual([]);
  });

  it('never puts the key in an error', async () => {
    // Prepare
    const answers = [status(500), status(400), () => undefined];
    const errors = [];

    // Act
    for (const answer of answers) {
      const receiver = await startReceiver(answer);
      const notices = new HttpNotices({
        url: receiver.url,
        secrets: memorySecrets(FIXTURE_SECRETS),
        timeoutMs: 200,
      });
      errors.push(await caught(notices.publish(handOff())));
    }

    // Assess
    expect(errors.map((error) => error.code)).toEqual([
      'NOTICE_UNAVAILABLE',
      'NOTICE_REJECTED',
      'NOTICE_UNAVAILABLE',
    ]);
    for (const error of errors) {
      expect(JSON.stringify({ message: error.message, data: error.data })).not.toContain(
        FIXTURE_HMAC_KEY,
      );
    }
  });

  it.each([
    ['not a URL', 'hooks.example.com/promotions', 'is not a URL'],
    ['plain http to a remote host', 'http://hooks.example.com/promotions', 'http:// is refused'],
    ['another scheme', 'ftp://hooks.example.com/promotions', 'expected an https:// URL'],
  ])('refuses a notify URL that is %s, at construction', (_case, url, expected) => {
    // Act
    let refused: unknown;
    try {
      new HttpNotices({ url, secrets: memorySecrets(FIXTURE_SECRETS) });
    } catch (error) {
      refused = error;
    }

    // Assess
    expect(refused).toMatchObject({ code: 'INVALID_CONFIG' });
    expect((refused as Error).message).toContain(expected);
  });

  it('accepts https:// and http:// to a loopback host', () => {
    // Act
    const made = ['https://hooks.example.com/promotions', 'http://localhost:8080/hooks'].map(
      (url) => new HttpNotices({ url, secrets: memorySecrets(FIXTURE_SECRETS) }),
    );

    // Assess
    expect(made.every((notices) => notices instanceof HttpNotices)).toBe(true);
  });
});
