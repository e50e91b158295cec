import { errorMessage, isPromoterError, PromoterError } from '../core/errors.ts';
import { type AddressPolicy, refuseInsecureUrl, SELF_HOSTED_ADDRESS_POLICY } from '../core/http.ts';
import { pipelineId } from '../core/pipeline.ts';
import { secretId } from '../core/pipeline-secret.ts';
import type { PromotionNotice, PromotionNotices, SecretStore } from '../core/ports.ts';
import { signBody } from '../core/signature.ts';
import { parseRetryAfter } from './git/errors.ts';
import { createGuardedAgents, guardedFetch, refusedConnection } from './guarded-http.ts';

/*
 * The `PromotionNotices` port as a signed POST (`promoter serve --notify-url`, DESIGN.md
 * section 13), signed the way Flux's `generic-hmac` provider signs its events: `X-Signature:
 * sha256=<hex HMAC-SHA256 of the body bytes>` with the key a Flux Provider's secret holds as
 * `token`, here the pipeline's shared `hmac-key`. A receiver that verifies Flux's events
 * verifies these with the same code and key. The body is serialised once and those bytes are
 * both signed and sent.
 *
 * Failures:
 * - NOTICE_UNAVAILABLE, retryable: 408, 429, 5xx (with a `Retry-After` as
 *   `data.retryAfterSeconds`, core/retry-policy.ts), the network, the timeout;
 * - NOTICE_REJECTED, permanent: any other answer but a 2xx (a redirect too: a signed notice is
 *   not sent on to somewhere else), and a connection the address policy refuses;
 * - INVALID_SECRET: the signing secret has no shared `hmac-key`; and what the secret store
 *   throws.
 * Errors name the URL without its user, password and query (where receivers put tokens), and
 * never a key.
 */

export interface HttpNoticesOptions {
  /** Where notices are POSTed: https://, or http:// to a loopback host. */
  readonly url: string;
  /** The pipelines' secrets: the notice's `signingSecret` holds the `hmac-key` that signs it. */
  readonly secrets: SecretStore;
  /** Gives up one POST (as NOTICE_UNAVAILABLE) after this long. Default 10 s. */
  readonly timeoutMs?: number;
  /** Where the POST may connect, checked at connect time. Default SELF_HOSTED_ADDRESS_POLICY. */
  readonly addressPolicy?: AddressPolicy;
  /** Default `pipeline-promoter`. */
  readonly userAgent?: string;
}

export const DEFAULT_NOTICE_TIMEOUT_MS = 10_000;

/** The header that tells a receiver what the notice is (`Promotion`, `Promotion State Change`). */
export const NOTICE_TYPE_HEADER = 'X-Promoter-Notice';

/**
 * The URL as errors, logs and the promotion's failure may show it: the origin only. Chat
 * webhooks (Slack, Teams, Discord) keep their secret in the path, others in the query.
 */
const shownUrl = (url: URL): string => (url.pathname === '/' ? url.origin : `${url.origin}/…`);

const TRANSIENT_STATUS = (status: number): boolean =>
  status === 408 || status === 429 || status >= 500;

const checkedUrl = (text: string): URL => {
  if (!URL.canParse(text)) {
    throw new PromoterError(
      'INVALID_CONFIG',
      'the notify URL is not a URL: expected https://host/path (or http:// to a loopback host)',
    );
  }
  const url = new URL(text);
  const refused = refuseInsecureUrl(url);
  if (refused !== undefined) {
    throw new PromoterError('INVALID_CONFIG', `the notify URL ${shownUrl(url)}: ${refused}`);
  }
  return url;
};

export class HttpNotices implements PromotionNotices {
  readonly #url: URL;
  readonly #secrets: SecretStore;
  readonly #timeoutMs: number;
  readonly #userAgent: string;
  readonly #fetch: ReturnType<typeof guardedFetch>;

  constructor(options: HttpNoticesOptions) {
    this.#url = checkedUrl(options.url);
    this.#secrets = options.secrets;
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_NOTICE_TIMEOUT_MS;
    this.#userAgent = options.userAgent ?? 'pipeline-promoter';
    this.#fetch = guardedFetch(
      createGuardedAgents(options.addressPolicy ?? SELF_HOSTED_ADDRESS_POLICY),
    );
  }

  async publish(notice: PromotionNotice): Promise<void> {
    const url = shownUrl(this.#url);
    const what = `${notice.type} notice of ${pipelineId(notice.pipeline)}`;
    const data = { pipeline: pipelineId(notice.pipeline), noticeType: notice.type, url };
    const secret = await this.#secrets.get(notice.signingSecret);
    const [key] = secret.hmacKeys;
    if (key === undefined) {
      throw new PromoterError(
        'INVALID_SECRET',
        `secret ${secretId(notice.signingSecret)} has no hmac-key to sign the ${what} with: add hmac-key (the key the receiver verifies X-Signature with)`,
        { data: { ...data, secret: secretId(notice.signingSecret), key: 'hmac-key' } },
      );
    }
    const body = Buffer.from(JSON.stringify(notice.body), 'utf8');
    let response: Response;
    try {
      response = await this.#fetch(this.#url, {
        method: 'POST',
        headers: {
          'Content-Type': 'application/json',
          'X-Signature': signBody(body, key),
          [NOTICE_TYPE_HEADER]: notice.type,
          'User-Agent': this.#userAgent,
        },
        body,
        redirect: 'manual',
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
    } catch (error) {
      throw this.#sendFailure(error, what, url, data);
    }
    // The answer's body says nothing the status does not; it is not read, only let go.
    await response.body?.cancel().catch(() => undefined);
    if (response.status >= 200 && response.status < 300) return;
    if (TRANSIENT_STATUS(response.status)) {
      const retryAfterSeconds = parseRetryAfter(response.headers.get('retry-after') ?? undefined);
      throw new PromoterError(
        'NOTICE_UNAVAILABLE',
        `${url} answered ${response.status} to the ${what}${retryAfterSeconds === undefined ? '' : ` (retry after ${retryAfterSeconds} s)`}`,
        {
          retryable: true,
          data: {
            ...data,
            status: response.status,
            ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }),
          },
        },
      );
    }
    const redirect = response.status >= 300 && response.status < 400;
    throw new PromoterError(
      'NOTICE_REJECTED',
      `${url} answered ${response.status} to the ${what}${redirect ? ': notices are not sent on to a redirect, give the final URL' : ''}`,
      { data: { ...data, status: response.status } },
    );
  }

  #sendFailure(
    error: unknown,
    what: string,
    url: string,
    data: Readonly<Record<string, unknown>>,
  ): PromoterError {
    const refused = refusedConnection(error);
    if (refused !== undefined) {
      return new PromoterError('NOTICE_REJECTED', `the ${what} was not sent: ${refused.message}`, {
        data: { ...data, host: refused.data.host },
        cause: refused,
      });
    }
    const timedOut =
      error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError');
    const reason = timedOut
      ? `no answer within ${this.#timeoutMs} ms`
      : isPromoterError(error)
        ? error.message
        : `${error instanceof Error ? error.name : 'Error'}: ${errorMessage(error)}${causeOf(error)}`;
    return new PromoterError(
      'NOTICE_UNAVAILABLE',
      `could not POST the ${what} to ${url}: ${reason}`,
      {
        retryable: true,
        data: { ...data, ...(timedOut ? { timeoutMs: this.#timeoutMs } : {}) },
        cause: error,
      },
    );
  }
}

/** `(ECONNREFUSED)`: what a network error's cause says, when it says more than `fetch failed`. */
const causeOf = (error: unknown): string => {
  const code = (error as { code?: unknown; cause?: { code?: unknown } } | null)?.code;
  const causeCode = (error as { cause?: { code?: unknown } } | null)?.cause?.code;
  const found = typeof code === 'string' ? code : typeof causeCode === 'string' ? causeCode : '';
  return found === '' ? '' : ` (${found})`;
};
