import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { LimitError, ProtocolError } from './errors.ts';
import {
  answerSteps,
  type GitObject,
  type IndexedObject,
  indexPackSteps,
  type PackLimits,
} from './pack.ts';

/**
 * Where a received pack is read (inflated, its deltas resolved, hashed and indexed, its trees and
 * needle hits picked out): in the calling thread (`inline`: the Lambda worker runs one job per
 * invocation, nothing else waits on its event loop), or in a worker thread (`worker-thread`:
 * `promoter serve` answers HTTP on the same event loop as its promotions, and a large or hostile
 * pack took it away from `/healthz` for seconds). Both run `indexPackSteps`; the worker thread
 * asks the calling thread for a thin pack's bases, which live in the repository cache there.
 */
export type PackParsing = 'inline' | 'worker-thread';

export interface ParseRequest {
  readonly pack: Buffer;
  /** Blobs whose bytes hold it are hits (their bytes kept); the others are misses. */
  readonly needle: string;
  readonly limits: PackLimits;
}

export interface ParsedPack {
  /** The pack, made whole when it was thin. */
  readonly data: Buffer;
  readonly objects: IndexedObject[];
  readonly trees: readonly (readonly [string, Buffer])[];
  readonly hits: readonly (readonly [string, Buffer])[];
  readonly misses: readonly string[];
  readonly deltasApplied: number;
}

export interface PackParser {
  readonly mode: PackParsing;
  /** Parses now running (in worker threads: posted to one). */
  readonly running: number;
  parse(request: ParseRequest, held: (oid: string) => GitObject | undefined): Promise<ParsedPack>;
  /** Stops the worker threads (idle ones do not keep the process alive). */
  close(): Promise<void>;
}

/** Runs the steps of `indexPackSteps`, each thin-pack request answered by `answer`. */
const collector = (request: ParseRequest) => {
  const trees: [string, Buffer][] = [];
  const hits: [string, Buffer][] = [];
  const misses: string[] = [];
  const steps = indexPackSteps(
    request.pack,
    (oid, object) => {
      if (object.type === 'tree') trees.push([oid, object.content]);
      else if (object.type === 'blob') {
        if (object.content.includes(request.needle)) hits.push([oid, object.content]);
        else misses.push(oid);
      }
    },
    request.limits,
  );
  return { steps, trees, hits, misses };
};

export const parsePackInline = (
  request: ParseRequest,
  held: (oid: string) => GitObject | undefined,
): ParsedPack => {
  const { steps, trees, hits, misses } = collector(request);
  const { data, objects, deltasApplied } = answerSteps(steps, held);
  return { data, objects, trees, hits, misses, deltasApplied };
};

class InlinePackParser implements PackParser {
  readonly mode = 'inline';
  running = 0;
  async parse(
    request: ParseRequest,
    held: (oid: string) => GitObject | undefined,
  ): Promise<ParsedPack> {
    this.running += 1;
    try {
      return parsePackInline(request, held);
    } finally {
      this.running -= 1;
    }
  }
  async close(): Promise<void> {}
}

// --- The messages between the calling thread and a worker thread.

/** An error as it crosses threads: enough to rebuild the adapter's own kinds. */
export interface SentError {
  readonly name: string;
  readonly message: string;
  readonly limit?: LimitError['limit'];
  readonly detail?: string;
}

export const sendError = (error: unknown): SentError =>
  error instanceof LimitError
    ? { name: error.name, message: error.message, limit: error.limit, detail: error.detail }
    : {
        name: error instanceof Error ? error.name : 'Error',
        message: error instanceof Error ? error.message : String(error),
      };

const receiveError = (sent: SentError): Error => {
  if (sent.name === 'LimitError' && sent.limit !== undefined) {
    return new LimitError(sent.limit, sent.detail ?? sent.message);
  }
  if (sent.name === 'ProtocolError') return new ProtocolError(sent.message);
  return new Error(`pack parsing failed: ${sent.message}`);
};

/** Pairs of (oid, bytes) as three transferable parts: oids, end offsets, and the bytes. */
export interface PackedPairs {
  readonly oids: Uint8Array;
  readonly ends: Float64Array;
  readonly bytes: Uint8Array;
}

export interface PackedResult {
  readonly data: Uint8Array;
  readonly objectOids: Uint8Array;
  readonly objectOffsets: Float64Array;
  readonly objectCrcs: Uint32Array;
  readonly trees: PackedPairs;
  readonly hits: PackedPairs;
  readonly misses: Uint8Array;
  readonly deltasApplied: number;
}

export type ToWorker =
  | {
      readonly type: 'parse';
      readonly pack: Uint8Array;
      readonly needle: string;
      readonly limits: PackLimits;
    }
  | { readonly type: 'given'; readonly objects: readonly (readonly [string, GitObject])[] };

export type FromWorker =
  | { readonly type: 'need'; readonly oids: readonly string[] }
  | { readonly type: 'done'; readonly result: PackedResult }
  | { readonly type: 'failed'; readonly error: SentError };

const packOids = (oids: readonly string[]): Uint8Array => {
  const out = Buffer.alloc(oids.length * 20);
  oids.forEach((oid, i) => {
    out.write(oid, i * 20, 'hex');
  });
  return out;
};

const unpackOids = (packed: Uint8Array): string[] => {
  const bytes = Buffer.from(packed.buffer, packed.byteOffset, packed.byteLength);
  const oids: string[] = [];
  for (let at = 0; at < bytes.length; at += 20) oids.push(bytes.toString('hex', at, at + 20));
  return oids;
};

const packPairs = (pairs: readonly (readonly [string, Buffer])[]): PackedPairs => {
  const ends = new Float64Array(pairs.length);
  let total = 0;
  pairs.forEach(([, bytes], i) => {
    total += bytes.length;
    ends[i] = total;
  });
  const bytes = Buffer.alloc(total);
  let at = 0;
  for (const [, content] of pairs) {
    content.copy(bytes, at);
    at += content.length;
  }
  return { oids: packOids(pairs.map(([oid]) => oid)), ends, bytes };
};

const unpackPairs = (packed: PackedPairs): [string, Buffer][] => {
  const oids = unpackOids(packed.oids);
  const bytes = Buffer.from(packed.bytes.buffer, packed.bytes.byteOffset, packed.bytes.byteLength);
  let start = 0;
  return oids.map((oid, i) => {
    const end = packed.ends[i] ?? start;
    const pair: [string, Buffer] = [oid, bytes.subarray(start, end)];
    start = end;
    return pair;
  });
};

/** The buffers a message may hand over instead of copying: whole, and not Node's shared pool. */
export const transferable = (views: readonly ArrayBufferView[]): ArrayBuffer[] => {
  const buffers = new Set<ArrayBuffer>();
  for (const view of views) {
    const { buffer } = view;
    if (
      buffer instanceof ArrayBuffer &&
      view.byteOffset === 0 &&
      view.byteLength === buffer.byteLength &&
      buffer.byteLength > 4096
    ) {
      buffers.add(buffer);
    }
  }
  return [...buffers];
};

export const packResult = (parsed: ParsedPack): PackedResult => ({
  data: parsed.data,
  objectOids: packOids(parsed.objects.map((object) => object.oid)),
  objectOffsets: Float64Array.from(parsed.objects, (object) => object.offset),
  objectCrcs: Uint32Array.from(parsed.objects, (object) => object.crc),
  trees: packPairs(parsed.trees),
  hits: packPairs(parsed.hits),
  misses: packOids(parsed.misses),
  deltasApplied: parsed.deltasApplied,
});

export const resultViews = (result: PackedResult): ArrayBufferView[] => [
  result.data,
  result.objectOids,
  result.objectOffsets,
  result.objectCrcs,
  result.trees.oids,
  result.trees.ends,
  result.trees.bytes,
  result.hits.oids,
  result.hits.ends,
  result.hits.bytes,
  result.misses,
];

const unpackResult = (result: PackedResult): ParsedPack => {
  const oids = unpackOids(result.objectOids);
  return {
    data: Buffer.from(result.data.buffer, result.data.byteOffset, result.data.byteLength),
    objects: oids.map((oid, i) => ({
      oid,
      offset: result.objectOffsets[i] ?? 0,
      crc: result.objectCrcs[i] ?? 0,
    })),
    trees: unpackPairs(result.trees),
    hits: unpackPairs(result.hits),
    misses: unpackOids(result.misses),
    deltasApplied: result.deltasApplied,
  };
};

/** Runs `parse` messages through `collector` in a worker thread (see pack-worker.ts). */
export const serveParses = (
  port: { postMessage(message: FromWorker, transfer?: ArrayBuffer[]): void },
  onMessage: (listener: (message: ToWorker) => void) => void,
): void => {
  let pending: ReturnType<typeof collector> | undefined;
  const advance = (given?: Map<string, GitObject>): void => {
    const current = pending;
    if (current === undefined) return;
    try {
      const step = given === undefined ? current.steps.next() : current.steps.next(given);
      if (step.done !== true) {
        port.postMessage({ type: 'need', oids: step.value });
        return;
      }
      pending = undefined;
      const { data, objects, deltasApplied } = step.value;
      const result = packResult({
        data,
        objects,
        trees: current.trees,
        hits: current.hits,
        misses: current.misses,
        deltasApplied,
      });
      port.postMessage({ type: 'done', result }, transferable(resultViews(result)));
    } catch (error) {
      pending = undefined;
      port.postMessage({ type: 'failed', error: sendError(error) });
    }
  };
  onMessage((message) => {
    if (message.type === 'parse') {
      const { pack, needle, limits } = message;
      const buffer = Buffer.from(pack.buffer, pack.byteOffset, pack.byteLength);
      try {
        pending = collector({ pack: buffer, needle, limits });
      } catch (error) {
        port.postMessage({ type: 'failed', error: sendError(error) });
        return;
      }
      advance();
    } else {
      const given = new Map<string, GitObject>();
      for (const [oid, object] of message.objects) {
        const content = Buffer.from(
          object.content.buffer,
          object.content.byteOffset,
          object.content.byteLength,
        );
        given.set(oid, { type: object.type, content });
      }
      advance(given);
    }
  });
};

const WORKER_FILE = new URL(
  import.meta.url.endsWith('.ts') ? './pack-worker.ts' : './pack-worker.js',
  import.meta.url,
);

/**
 * A worker thread running pack-worker. Under tsx (tests, `npm start`) the worker file is
 * TypeScript, and Node does not hand the parent's loader to a worker: the worker registers
 * tsx's ESM loader itself before importing it.
 */
const startWorker = (): Worker => {
  if (!WORKER_FILE.pathname.endsWith('.ts')) return new Worker(WORKER_FILE);
  const require = createRequire(import.meta.url);
  const manifest = require.resolve('tsx/package.json');
  const exports = (
    JSON.parse(readFileSync(manifest, 'utf8')) as {
      exports: Record<string, { import?: { default?: string } }>;
    }
  ).exports;
  const api = exports['./esm/api']?.import?.default ?? './dist/esm/api/index.mjs';
  const loader = pathToFileURL(join(dirname(manifest), api)).href;
  const bootstrap = `import(${JSON.stringify(loader)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(WORKER_FILE.href)}); });`;
  return new Worker(bootstrap, { eval: true });
};

export interface WorkerThreadPackParserOptions {
  /** Most parses at once, each in its own thread (default 2); more wait their turn. */
  readonly maxThreads?: number;
}

interface Job {
  readonly request: ParseRequest;
  readonly held: (oid: string) => GitObject | undefined;
  readonly resolve: (parsed: ParsedPack) => void;
  readonly reject: (error: Error) => void;
}

/**
 * Parses in worker threads kept between parses (a thread starts in tens of milliseconds, more
 * under tsx). A thread whose parse outlives the time budget by a second is terminated: the
 * in-thread checks stop a parse between objects, this stops one stuck inside an object.
 */
class WorkerThreadPackParser implements PackParser {
  readonly mode = 'worker-thread';
  running = 0;
  private readonly idle: Worker[] = [];
  private readonly all = new Set<Worker>();
  private readonly waiting: Job[] = [];
  private readonly maxThreads: number;

  constructor(options: WorkerThreadPackParserOptions = {}) {
    this.maxThreads = Math.max(1, options.maxThreads ?? 2);
  }

  parse(request: ParseRequest, held: (oid: string) => GitObject | undefined): Promise<ParsedPack> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ request, held, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.waiting.length > 0 && (this.idle.length > 0 || this.all.size < this.maxThreads)) {
      const job = this.waiting.shift() as Job;
      let worker = this.idle.pop();
      if (worker === undefined) {
        worker = startWorker();
        this.all.add(worker);
      }
      this.run(worker, job);
    }
  }

  private run(worker: Worker, job: Job): void {
    this.running += 1;
    worker.ref();
    let settled = false;
    const finish = (outcome: { parsed: ParsedPack } | { error: Error }, keep: boolean): void => {
      if (settled) return;
      settled = true;
      this.running -= 1;
      clearTimeout(timer);
      worker.off('message', onMessage);
      worker.off('error', onError);
      worker.off('exit', onExit);
      if (keep) {
        worker.unref();
        this.idle.push(worker);
      } else {
        this.all.delete(worker);
        void worker.terminate();
      }
      if ('parsed' in outcome) job.resolve(outcome.parsed);
      else job.reject(outcome.error);
      this.pump();
    };
    const onMessage = (message: FromWorker): void => {
      if (message.type === 'need') {
        const objects: [string, GitObject][] = [];
        for (const oid of message.oids) {
          const object = job.held(oid);
          if (object !== undefined) objects.push([oid, object]);
        }
        worker.postMessage({ type: 'given', objects } satisfies ToWorker);
      } else if (message.type === 'done') {
        finish({ parsed: unpackResult(message.result) }, true);
      } else {
        finish({ error: receiveError(message.error) }, true);
      }
    };
    const onError = (error: Error): void => finish({ error }, false);
    const onExit = (code: number): void =>
      finish({ error: new Error(`the pack parsing thread exited with ${code}`) }, false);
    worker.on('message', onMessage);
    worker.on('error', onError);
    worker.on('exit', onExit);
    const { deadline } = job.request.limits;
    const timer =
      deadline === undefined
        ? undefined
        : setTimeout(
            () =>
              finish(
                {
                  error: new LimitError(
                    'promotionTimeout',
                    'the promotion ran out of its time budget while reading the pack',
                  ),
                },
                false,
              ),
            Math.max(0, deadline - Date.now()) + 1_000,
          );
    timer?.unref();
    const { pack, needle, limits } = job.request;
    worker.postMessage(
      { type: 'parse', pack, needle, limits } satisfies ToWorker,
      transferable([pack]),
    );
  }

  async close(): Promise<void> {
    const workers = [...this.all];
    this.all.clear();
    this.idle.length = 0;
    await Promise.all(workers.map((worker) => worker.terminate()));
  }
}

export const createPackParser = (
  mode: PackParsing,
  options: WorkerThreadPackParserOptions = {},
): PackParser => (mode === 'inline' ? new InlinePackParser() : new WorkerThreadPackParser(options));
