/**
 * What the core's HTTP request functions (the webhook, the pipelines API) share with the shells
 * that call them: the request and answer shapes, and URL rules.
 */
export interface HttpRequest {
  readonly method: string;
  /** The path without the query. */
  readonly path: string;
  /** The raw body bytes, exactly as received. */
  readonly body: Uint8Array;
  /** Set by a shell that stopped reading a body over the request function's limit. */
  readonly bodyTruncated?: boolean;
}

export interface HttpAnswer {
  readonly status: number;
  readonly body: Readonly<Record<string, unknown>>;
  readonly headers?: Readonly<Record<string, string>>;
}

/**
 * Where plain http:// is acceptable: loopback hosts only (tests, `promoter serve`, a local
 * GitHub Enterprise). Everything that leaves the machine uses https://.
 */
const LOOPBACK_HOST = /^(?:localhost|127(?:\.\d{1,3}){3}|\[::1\])$/i;

export const isLoopbackHost = (hostname: string): boolean => LOOPBACK_HOST.test(hostname);

/** Undefined when `url` is https://, or http:// on a loopback host; else why it is refused. */
export const refuseInsecureUrl = (url: URL): string | undefined => {
  if (url.protocol === 'https:') return undefined;
  if (url.protocol === 'http:') {
    return isLoopbackHost(url.hostname)
      ? undefined
      : `http:// is refused for ${url.host}: use https:// (plain http is only for loopback hosts)`;
  }
  return `expected an https:// URL, got ${url.protocol}`;
};

/**
 * One URL path segment, percent-decoded; undefined when it is empty, malformed, or decodes to
 * something that could be read as more than one segment.
 */
export const decodePathSegment = (segment: string): string | undefined => {
  try {
    const decoded = decodeURIComponent(segment);
    return decoded === '' || decoded.includes('/') ? undefined : decoded;
  } catch {
    return undefined;
  }
};
