import type { IncomingMessage } from 'node:http';

/**
 * Reads a request body up to `limit` bytes. Past the limit it stops reading and reports
 * `truncated`, so that an oversized body costs no more than the limit.
 */
export const readBody = (
  request: IncomingMessage,
  limit: number,
): Promise<{ body: Buffer; truncated: boolean }> => {
  const declared = Number(request.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    return Promise.resolve({ body: Buffer.alloc(0), truncated: true });
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.byteLength;
      if (size > limit) {
        request.off('data', onData);
        request.pause();
        resolve({ body: Buffer.alloc(0), truncated: true });
        return;
      }
      chunks.push(chunk);
    };
    request.on('data', onData);
    request.once('end', () =>
      resolve({
        body: chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks),
        truncated: false,
      }),
    );
    request.once('error', reject);
  });
};
