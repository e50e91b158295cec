import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A stand-in git server speaking just enough smart HTTP (protocol v0) to hand a client the pack
 * a test wrote: both ref advertisements with one branch, and a `git-upload-pack` answer carrying
 * `pack` on side band 1 whatever was asked. `stall` keeps the fetch answer open without a byte.
 */
export interface SmartHttpStandIn {
  /** `http://127.0.0.1:{port}/fleet/hostile.git` */
  readonly repositoryUrl: string;
  /** Sets the pack the next fetches get, and the head they advertise. */
  serve(pack: Buffer, head: string): void;
  /** Fetch answers that never come (until the client gives up). */
  stall(): void;
  /** `git-upload-pack` requests answered so far. */
  readonly fetches: number;
  close(): Promise<void>;
}

const pkt = (payload: string | Buffer): Buffer => {
  const data = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  return Buffer.concat([Buffer.from((data.length + 4).toString(16).padStart(4, '0')), data]);
};
const FLUSH = Buffer.from('0000');

export const startSmartHttpStandIn = async (): Promise<SmartHttpStandIn> => {
  let pack: Buffer = Buffer.alloc(0);
  let head = '0'.repeat(40);
  let stalled = false;
  let fetches = 0;
  const advertise = (service: string, capabilities: string): Buffer =>
    Buffer.concat([
      pkt(`# service=${service}\n`),
      FLUSH,
      pkt(`${head} refs/heads/main\0${capabilities}\n`),
      FLUSH,
    ]);
  const handle = (request: IncomingMessage, response: ServerResponse): void => {
    const url = new URL(request.url ?? '/', 'http://127.0.0.1');
    if (request.method === 'GET' && url.pathname.endsWith('/info/refs')) {
      const service = url.searchParams.get('service') ?? '';
      response.writeHead(200, { 'content-type': `application/x-${service}-advertisement` });
      response.end(
        advertise(
          service,
          service === 'git-upload-pack'
            ? 'multi_ack side-band-64k ofs-delta shallow no-progress'
            : 'report-status delete-refs ofs-delta',
        ),
      );
      return;
    }
    if (request.method === 'POST' && url.pathname.endsWith('/git-upload-pack')) {
      request.resume();
      fetches += 1;
      if (stalled) return;
      response.writeHead(200, { 'content-type': 'application/x-git-upload-pack-result' });
      const parts = [pkt(`shallow ${head}\n`), FLUSH, pkt('NAK\n')];
      for (let at = 0; at < pack.length; at += 65515) {
        parts.push(pkt(Buffer.concat([Buffer.from([1]), pack.subarray(at, at + 65515)])));
      }
      parts.push(FLUSH);
      response.end(Buffer.concat(parts));
      return;
    }
    response.writeHead(404).end();
  };
  const server: Server = createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    repositoryUrl: `http://127.0.0.1:${port}/fleet/hostile.git`,
    serve: (next, nextHead) => {
      pack = next;
      head = nextHead;
      stalled = false;
    },
    stall: () => {
      stalled = true;
    },
    get fetches() {
      return fetches;
    },
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
};
