import { isLoopbackHost } from '../../core/http.ts';

/**
 * The status page's buttons change things (an approval, a freeze) with no login: on loopback
 * `serve` whoever can reach the port may, and `promoter ui` signs whatever reaches it with the
 * user's AWS credentials. So that another web site open in the same browser cannot make those
 * requests, a request that changes something is refused when it comes from another origin
 * (browsers send `Origin` and `Sec-Fetch-Site` on cross-origin requests), or, on a server that
 * listens on loopback, when its `Host` is not a loopback name (DNS rebinding: a site whose name
 * resolves to 127.0.0.1 is same-origin to the browser, but its Host header gives it away).
 * Tools other than browsers (curl, `promoter approve`) send neither header and pass.
 */
const IPV4_LOOPBACK = /^127(?:\.\d{1,3}){3}$/;

/** A socket address (`127.0.0.1`, `::1`, `::ffff:127.0.0.1`) on the loopback interface. */
export const isLoopbackAddress = (address: string | undefined): boolean =>
  address !== undefined &&
  (address === '::1' ||
    IPV4_LOOPBACK.test(address) ||
    (address.startsWith('::ffff:') && IPV4_LOOPBACK.test(address.slice('::ffff:'.length))));

const hostnameOf = (host: string): string | undefined => {
  try {
    return new URL(`http://${host}`).hostname;
  } catch {
    return undefined;
  }
};

/** An approval or a freeze is a few hundred bytes. */
export const MAX_CONTROL_BODY_BYTES = 64 * 1024;

type Headers = Readonly<Record<string, string | string[] | undefined>>;

const header = (headers: Headers, name: string): string | undefined => {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
};

/** Why a request to a loopback server is refused for its Host (DNS rebinding), or undefined. */
export const refuseNonLoopbackHost = (headers: Headers): string | undefined => {
  const host = header(headers, 'host');
  const hostname = host === undefined ? undefined : hostnameOf(host);
  return hostname !== undefined && isLoopbackHost(hostname)
    ? undefined
    : `refused: Host ${JSON.stringify(host ?? '')} is not a loopback name (open the page at http://127.0.0.1:PORT/ or http://localhost:PORT/)`;
};

/** Why a state-changing request is refused (403), or undefined when it may go ahead. */
export const refuseCrossSiteRequest = (
  headers: Headers,
  onLoopback: boolean,
): string | undefined => {
  if (onLoopback) {
    const refused = refuseNonLoopbackHost(headers);
    if (refused !== undefined) return refused;
  }
  const site = header(headers, 'sec-fetch-site');
  if (site !== undefined && site !== 'same-origin' && site !== 'none') {
    return `refused: a ${site} request (only the status page itself may send this)`;
  }
  const origin = header(headers, 'origin');
  if (origin !== undefined) {
    let same = false;
    try {
      same = new URL(origin).host === header(headers, 'host');
    } catch {}
    if (!same) return `refused: a request from another origin (${origin})`;
  }
  return undefined;
};
