import { type EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { errorMessage, PromoterError } from '../core/errors.ts';
import { pipelineId } from '../core/pipeline.ts';
import type { PromotionNotice, PromotionNotices } from '../core/ports.ts';
import { NOTICE_SOURCE } from '../core/promotion-notices.ts';

/*
 * The `PromotionNotices` port on the stack's EventBridge bus (DESIGN.md section 13): one
 * PutEvents entry per notice, `source` `pipeline-promoter`, `detail-type` the notice's type
 * (`Promotion`, `Promotion State Change`), `detail` its body, no `resources`. Users route them
 * with rules of their own (chat, CI, a log group). The signing secret is not used: IAM decides
 * who may put events on the bus and who may read them.
 *
 * Failures (PutEvents answers 200 with per-entry errors, or throws):
 * - NOTICE_UNAVAILABLE, retryable: an entry's InternalFailure or ThrottlingException (what the
 *   API reference calls retryable), throttling, a 5xx, a timeout, the network;
 * - NOTICE_REJECTED, permanent: an entry the bus refused for what it is (MalformedDetail,
 *   InvalidArgument, AccessDeniedException, NotAuthorizedFor...), a detail over EventBridge's
 *   256 KB entry limit (checked before sending: the SDK answer for it varies), a bus that does
 *   not exist, AccessDenied and validation errors.
 */

/** EventBridge's limit on one PutEvents entry (Source, DetailType, Detail in UTF-8 bytes). */
export const MAX_ENTRY_BYTES = 256 * 1024;

/** Per-entry error codes the EventBridge API reference calls retryable. */
const RETRYABLE_ENTRY_ERRORS: ReadonlySet<string> = new Set([
  'InternalFailure',
  'ThrottlingException',
]);

/** SDK errors that are about load, not about the request: asked again, they can succeed. */
const TRANSIENT_ERRORS: ReadonlySet<string> = new Set([
  'ThrottlingException',
  'Throttling',
  'TooManyRequestsException',
  'RequestLimitExceeded',
  'ServiceUnavailable',
  'ServiceUnavailableException',
  'InternalException',
  'InternalFailure',
  'RequestTimeout',
  'RequestTimeoutException',
  'TimeoutError',
]);

const utf8Bytes = (text: string): number => Buffer.byteLength(text, 'utf8');

interface SdkError {
  readonly name: string;
  readonly message: string;
  readonly fault?: 'client' | 'server';
  readonly status?: number;
}

const sdkError = (error: unknown): SdkError => {
  const metadata = (error as { $metadata?: { httpStatusCode?: unknown } } | null)?.$metadata;
  const fault = (error as { $fault?: unknown } | null)?.$fault;
  const status = metadata?.httpStatusCode;
  return {
    name: error instanceof Error ? error.name : 'Error',
    message: errorMessage(error),
    ...(fault === 'client' || fault === 'server' ? { fault } : {}),
    ...(typeof status === 'number' ? { status } : {}),
  };
};

/**
 * Transient unless the service answered that the request itself is wrong: a 4xx client fault
 * other than throttling. No answer at all (the network, a timeout) is transient.
 */
const isTransient = (error: SdkError): boolean => {
  if (TRANSIENT_ERRORS.has(error.name)) return true;
  if (error.fault === 'server') return true;
  if (error.status === undefined) return error.fault !== 'client';
  return error.status >= 500 || error.status === 408 || error.status === 429;
};

export class EventBridgeNotices implements PromotionNotices {
  constructor(
    private readonly client: EventBridgeClient,
    private readonly eventBusName: string,
  ) {}

  async publish(notice: PromotionNotice): Promise<void> {
    const what = `${notice.type} notice of ${pipelineId(notice.pipeline)}`;
    const data = {
      pipeline: pipelineId(notice.pipeline),
      noticeType: notice.type,
      eventBusName: this.eventBusName,
    };
    const detail = JSON.stringify(notice.body);
    const size = utf8Bytes(NOTICE_SOURCE) + utf8Bytes(notice.type) + utf8Bytes(detail);
    if (size > MAX_ENTRY_BYTES) {
      throw new PromoterError(
        'NOTICE_REJECTED',
        `the ${what} is ${size} bytes, over EventBridge's ${MAX_ENTRY_BYTES}-byte entry limit: it was not put on event bus ${this.eventBusName}`,
        { data: { ...data, bytes: size } },
      );
    }
    let failed: { readonly code: string; readonly message: string } | undefined;
    try {
      const answer = await this.client.send(
        new PutEventsCommand({
          Entries: [
            {
              Source: NOTICE_SOURCE,
              DetailType: notice.type,
              Detail: detail,
              EventBusName: this.eventBusName,
            },
          ],
        }),
      );
      if ((answer.FailedEntryCount ?? 0) > 0) {
        const entry = answer.Entries?.[0];
        failed = {
          code: entry?.ErrorCode ?? 'UnknownError',
          message: entry?.ErrorMessage ?? 'no message',
        };
      }
    } catch (error) {
      throw this.#sdkFailure(error, what, data);
    }
    if (failed !== undefined) {
      const retryable = RETRYABLE_ENTRY_ERRORS.has(failed.code);
      throw new PromoterError(
        retryable ? 'NOTICE_UNAVAILABLE' : 'NOTICE_REJECTED',
        `event bus ${this.eventBusName} ${retryable ? 'could not take' : 'refused'} the ${what}: ${failed.code}: ${failed.message}`,
        { retryable, data: { ...data, error: failed.code } },
      );
    }
  }

  #sdkFailure(
    error: unknown,
    what: string,
    data: Readonly<Record<string, unknown>>,
  ): PromoterError {
    const failure = sdkError(error);
    const reason = `${failure.name}: ${failure.message}`;
    if (failure.name === 'ResourceNotFoundException') {
      return new PromoterError(
        'NOTICE_REJECTED',
        `event bus ${this.eventBusName} does not exist, the ${what} was not put on it (${reason}): check the event bus name the function is given`,
        { data: { ...data, error: failure.name }, cause: error },
      );
    }
    if (isTransient(failure)) {
      return new PromoterError(
        'NOTICE_UNAVAILABLE',
        `could not put the ${what} on event bus ${this.eventBusName} (${reason})`,
        { retryable: true, data: { ...data, error: failure.name }, cause: error },
      );
    }
    const hint = /AccessDenied|NotAuthorized/.test(failure.name)
      ? `: check that the function's role may events:PutEvents on the bus`
      : '';
    return new PromoterError(
      'NOTICE_REJECTED',
      `event bus ${this.eventBusName} refused the ${what} (${reason})${hint}`,
      { data: { ...data, error: failure.name }, cause: error },
    );
  }
}
