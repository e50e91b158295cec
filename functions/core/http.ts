/*
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

/**
 * What the service may connect to (DESIGN.md section 14). Pipelines are trusted configuration,
 * but a repository or API URL must not make the worker reach the cloud's metadata service, the
 * Lambda runtime API on loopback, or the private network around it. The rule is applied to the
 * address a connection actually goes to (checked by the adapters at connect time, after DNS), so
 * that spellings (`127.1`, `0x7f000001`, `[::ffff:127.0.0.1]`) and DNS names that resolve or
 * rebind to such addresses are refused too.
 */
export type AddressKind =
  | 'public'
  | 'loopback'
  | 'private'
  | 'link-local'
  | 'unspecified'
  | 'reserved';

export interface AddressPolicy {
  /** Kinds of address allowed besides public ones. */
  readonly allow: readonly Exclude<AddressKind, 'public'>[];
  /** Host names (as a URL spells them) whose addresses are not checked; plain http still needs loopback. */
  readonly allowedHosts: readonly string[];
}

/** AWS: public addresses only, unless the stack's `allowedGitHosts` lists the host. */
export const strictAddressPolicy = (allowedHosts: readonly string[] = []): AddressPolicy => ({
  allow: [],
  allowedHosts,
});

/** `promoter serve`: loopback (tests, a local git server) and private networks (self-hosted). */
export const SELF_HOSTED_ADDRESS_POLICY: AddressPolicy = {
  allow: ['loopback', 'private'],
  allowedHosts: [],
};

/** An IPv4 address as `inet_aton` (and so getaddrinfo) reads it: `127.1`, `0x7f000001`, `0177.0.0.1`. */
const parseIpv4 = (text: string): number[] | undefined => {
  const parts = text.split('.');
  if (parts.length > 4 || parts.some((part) => part === '')) return undefined;
  const numbers: number[] = [];
  for (const part of parts) {
    let value: number;
    if (/^0x[0-9a-f]*$/i.test(part)) value = part.length === 2 ? 0 : Number.parseInt(part, 16);
    else if (/^0[0-7]*$/.test(part)) value = Number.parseInt(part, 8);
    else if (/^[1-9]\d*$/.test(part)) value = Number(part);
    else return undefined;
    numbers.push(value);
  }
  const last = numbers.pop() ?? 0;
  if (numbers.some((value) => value > 255) || last >= 256 ** (4 - numbers.length)) {
    return undefined;
  }
  const bytes = [...numbers];
  for (let i = 3 - numbers.length; i >= 0; i--) bytes.push(Math.floor(last / 256 ** i) % 256);
  return bytes;
};

/** An IPv6 address (brackets and zone allowed) as 16 bytes. */
const parseIpv6 = (text: string): number[] | undefined => {
  let address = text.replace(/^\[(.*)\]$/, '$1').replace(/%.*$/, '');
  let tail: number[] = [];
  const v4 = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(address);
  if (v4 !== null) {
    const bytes = /^\d+\.\d+\.\d+\.\d+$/.test(v4[2] ?? '') ? parseIpv4(v4[2] ?? '') : undefined;
    if (bytes === undefined || (v4[2] ?? '').split('.').some((part) => /^0\d/.test(part))) {
      return undefined;
    }
    tail = bytes;
    address = `${v4[1]}0:0`;
  }
  const halves = address.split('::');
  if (halves.length > 2) return undefined;
  const groups = (half: string | undefined): number[] | undefined => {
    if (half === undefined || half === '') return [];
    const values: number[] = [];
    for (const group of half.split(':')) {
      if (!/^[0-9a-f]{1,4}$/i.test(group)) return undefined;
      values.push(Number.parseInt(group, 16));
    }
    return values;
  };
  const head = groups(halves[0]);
  const rest = groups(halves[1]);
  if (head === undefined || rest === undefined) return undefined;
  const missing = 8 - head.length - rest.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  const all = [...head, ...new Array<number>(halves.length === 1 ? 0 : missing).fill(0), ...rest];
  const bytes = all.flatMap((group) => [group >> 8, group & 255]);
  if (tail.length === 4) bytes.splice(12, 4, ...tail);
  return bytes;
};

const ipv4Kind = ([a = 0, b = 0, c = 0]: readonly number[]): AddressKind => {
  if (a === 0) return 'unspecified';
  if (a === 127) return 'loopback';
  if (a === 169 && b === 254) return 'link-local';
  if (a === 10 || (a === 172 && b >= 16 && b < 32) || (a === 192 && b === 168)) return 'private';
  // Carrier-grade NAT space: not the internet either.
  if (a === 100 && b >= 64 && b < 128) return 'private';
  if (
    (a === 192 && b === 0 && (c === 0 || c === 2)) ||
    (a === 198 && (b === 18 || b === 19)) ||
    (a === 198 && b === 51 && c === 100) ||
    (a === 203 && b === 0 && c === 113) ||
    a >= 224
  ) {
    return 'reserved';
  }
  return 'public';
};

const ipv6Kind = (bytes: readonly number[]): AddressKind => {
  const zero = (from: number, to: number): boolean =>
    bytes.slice(from, to).every((byte) => byte === 0);
  const v4 = bytes.slice(12, 16);
  if (zero(0, 10) && bytes[10] === 0xff && bytes[11] === 0xff) return ipv4Kind(v4);
  if (zero(0, 15))
    return bytes[15] === 1 ? 'loopback' : bytes[15] === 0 ? 'unspecified' : 'reserved';
  // IPv4-compatible (deprecated) and NAT64 addresses carry an IPv4 address that may be reached.
  if (zero(0, 12)) return ipv4Kind(v4);
  if (bytes[0] === 0x00 && bytes[1] === 0x64 && bytes[2] === 0xff && bytes[3] === 0x9b) {
    return zero(4, 12) ? ipv4Kind(v4) : 'reserved';
  }
  // 6to4: 2002:AABB:CCDD::/48 embeds the IPv4 address AA.BB.CC.DD.
  if (bytes[0] === 0x20 && bytes[1] === 0x02) return ipv4Kind(bytes.slice(2, 6));
  const first = bytes[0] ?? 0;
  const second = bytes[1] ?? 0;
  if (first === 0xfe && (second & 0xc0) === 0x80) return 'link-local';
  if ((first & 0xfe) === 0xfc) return 'private';
  if (first === 0xff || (first === 0xfe && (second & 0xc0) === 0xc0)) return 'reserved';
  // Teredo (2001::/32) and documentation (2001:db8::/32) addresses.
  if (first === 0x20 && second === 0x01 && bytes[2] === 0x00 && bytes[3] === 0x00)
    return 'reserved';
  if (first === 0x20 && second === 0x01 && bytes[2] === 0x0d && bytes[3] === 0xb8)
    return 'reserved';
  // Outside 2000::/3 nothing is assigned for global unicast.
  return (first & 0xe0) === 0x20 ? 'public' : 'reserved';
};

/** What kind of address `ip` is; undefined when it is not an IP address at all. */
export const addressKind = (ip: string): AddressKind | undefined => {
  if (ip.includes(':')) {
    const bytes = parseIpv6(ip);
    return bytes === undefined ? undefined : ipv6Kind(bytes);
  }
  const bytes = parseIpv4(ip);
  return bytes === undefined ? undefined : ipv4Kind(bytes);
};

/** Whether the policy refuses a connection to `ip` (anything that is not an address is refused). */
export const isRefusedAddress = (ip: string, policy: AddressPolicy): boolean => {
  const kind = addressKind(ip);
  if (kind === undefined) return true;
  return kind !== 'public' && !policy.allow.includes(kind);
};

/** A host name as a URL normalises it (`127.1` → `127.0.0.1`, IPv6 in brackets, lower case). */
export const normaliseHost = (host: string): string => {
  const trimmed = host.trim().replace(/\.+$/, '');
  const bracketed = trimmed.includes(':') && !trimmed.startsWith('[') ? `[${trimmed}]` : trimmed;
  try {
    return new URL(`http://${bracketed}/`).hostname.toLowerCase();
  } catch {
    return trimmed.toLowerCase();
  }
};

export const isAllowedHost = (host: string, policy: AddressPolicy): boolean => {
  if (policy.allowedHosts.length === 0) return false;
  const name = normaliseHost(host);
  return policy.allowedHosts.some((allowed) => normaliseHost(allowed) === name);
};

/**
 * Undefined when a connection to `host` (as the URL names it) at `ip` (where it resolved) is
 * allowed, else why not. Plain http goes to loopback addresses only, whatever the host list says.
 */
export const refuseConnection = (
  host: string,
  ip: string,
  policy: AddressPolicy,
  protocol: 'http:' | 'https:',
): string | undefined => {
  const kind = addressKind(ip) ?? 'not an IP address';
  if (protocol === 'http:' && kind !== 'loopback') {
    return `plain http:// to ${host} (${ip}, ${kind}) is refused: only loopback hosts may use http://`;
  }
  if (isAllowedHost(host, policy) || !isRefusedAddress(ip, policy)) return undefined;
  const where = normaliseHost(host) === normaliseHost(ip) ? ip : `${host} resolves to ${ip}`;
  return `${where} (${kind} address), which is refused; list the host in allowedGitHosts (PROMOTER_ALLOWED_GIT_HOSTS) to allow it`;
};
