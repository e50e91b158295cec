import { parentPort } from 'node:worker_threads';
import { type FromWorker, serveParses, type ToWorker } from './pack-parser.ts';

/**
 * The worker thread of `createPackParser('worker-thread')`: reads the packs posted to it off the
 * calling thread's event loop (pack-parser.ts has the protocol).
 */
const port = parentPort;
if (port !== null) {
  serveParses(
    {
      postMessage: (message: FromWorker, transfer?: ArrayBuffer[]) =>
        port.postMessage(message, transfer),
    },
    (listener: (message: ToWorker) => void) => port.on('message', listener),
  );
}
