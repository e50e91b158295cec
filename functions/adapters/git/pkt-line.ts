import { ProtocolError } from './errors.ts';

/*
 * Git's pkt-line framing (length-prefixed packets, flush; gitprotocol-common), and reading
 * smart-HTTP response bodies: whole up to a size limit (a fetch), or up to the first flush (a
 * push report, so that the server's hooks are not waited for).
 */

/** One pkt-line: the payload after its 4-hex-digit length. */
export const pkt = (line: string | Buffer): Buffer => {
  const payload = typeof line === 'string' ? Buffer.from(line, 'utf8') : line;
  return Buffer.concat([Buffer.from((payload.length + 4).toString(16).padStart(4, '0')), payload]);
};

/** The flush packet. */
export const FLUSH = Buffer.from('0000');

/** The packets of a pkt-line stream: a Buffer each, `null` for a flush (or delim) packet. */
export function* packets(data: Buffer): Generator<Buffer | null> {
  let position = 0;
  while (position + 4 <= data.length) {
    const length = Number.parseInt(data.toString('latin1', position, position + 4), 16);
    if (Number.isNaN(length)) throw new ProtocolError('malformed pkt-line from the git server');
    if (length < 4) {
      position += 4;
      yield null;
      continue;
    }
    if (position + length > data.length) {
      throw new ProtocolError('truncated pkt-line from the git server');
    }
    yield data.subarray(position + 4, position + length);
    position += length;
  }
}

/**
 * A pkt-line response up to its first flush packet (which ends a push report); the rest of the
 * body is drained in the background.
 */
export const readUntilFlush = async (body: AsyncIterable<Uint8Array>): Promise<Buffer> => {
  const iterator = body[Symbol.asyncIterator]();
  let data = Buffer.alloc(0);
  let position = 0;
  for (;;) {
    const next = await iterator.next();
    if (next.done === true) return data;
    data = Buffer.concat([data, Buffer.from(next.value)]);
    while (position + 4 <= data.length) {
      const length = Number.parseInt(data.toString('latin1', position, position + 4), 16);
      if (Number.isNaN(length)) return data;
      if (length === 0) {
        void (async () => {
          try {
            for (
              let rest = await iterator.next();
              rest.done !== true;
              rest = await iterator.next()
            );
          } catch {
            // The report is in hand; the end of the response does not matter.
          }
        })();
        return data.subarray(0, position + 4);
      }
      if (position + length > data.length) break;
      position += Math.max(length, 4);
    }
  }
};

/** A response body as one Buffer; undefined (and the download stopped) past `limit` bytes. */
export const collect = async (
  body: AsyncIterable<Uint8Array>,
  limit: number,
): Promise<Buffer | undefined> => {
  const iterator = body[Symbol.asyncIterator]();
  const chunks: Buffer[] = [];
  let size = 0;
  for (let next = await iterator.next(); next.done !== true; next = await iterator.next()) {
    const chunk = next.value;
    chunks.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length));
    size += chunk.length;
    if (size > limit) {
      // `return()` ends the download (smart-http's body iterator cancels the stream).
      try {
        await iterator.return?.();
      } catch {
        // The stream is being torn down either way.
      }
      return undefined;
    }
  }
  return Buffer.concat(chunks);
};
