import * as nodeFs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nodeHttp from 'isomorphic-git/http/node';
import { PromoterError } from '../core/errors.ts';
import { type AddressPolicy, SELF_HOSTED_ADDRESS_POLICY } from '../core/http.ts';
import type {
  ConfigRepository,
  PromotionBranchRequest,
  PromotionBranchResult,
} from '../core/ports.ts';
import {
  type ErrorContext,
  LimitError,
  ProtocolError,
  RaceError,
  safeUrl,
  toPromoterError,
  urlPasswords,
} from './git/errors.ts';
import { GIT_LIMIT_DEFAULTS } from './git/limits.ts';
import { DEFAULT_PACK_LIMITS, type PackLimits } from './git/pack.ts';
import { createPackParser, type PackParser, type PackParsing } from './git/pack-parser.ts';
import {
  cacheDirectory,
  cacheFor,
  type RepositoryCache,
  withLock,
} from './git/repository-cache.ts';
import {
  type Advertisement,
  DEFAULT_MAX_PACK_BYTES,
  DEFAULT_READ_RETRY,
  discover,
  type FetchOptions,
  fetchHead,
  type GitHttpClient,
  pushCommit,
  type ReadRetry,
  type Remote,
} from './git/smart-http.ts';
import { buildCommit, commitTree, type Tree } from './git/tree.ts';
import { agentFor, createGuardedAgents, type GuardedAgents } from './guarded-http.ts';

/**
 * The ConfigRepository port over git smart HTTP, with isomorphic-git's transport (ref discovery
 * and requests through `GitRemoteHTTP`, its Node HTTP client, credentials with `onAuth`) and a
 * purpose-built object path, because a promotion needs a small part of what a clone does
 * (DESIGN.md section 7.3). Per promotion:
 *
 * 1. Read the refs (`info/refs`). On first contact the receive-pack advertisement is read at the
 *    same time, for its capabilities.
 * 2. Unless the cache holds the base head: one `git-upload-pack` request for it, no tags, no
 *    checkout. The first fetch asks for depth 1; later ones name the heads held (`have`, and the
 *    depth-1 boundary as `shallow`) and ask for a thin pack, so that only the new commits'
 *    objects come (the server skips its shallow computation, too). A thin pack is made whole
 *    (`index-pack --fix-thin`'s way) before it is kept.
 * 3. The pack is read once, with Node's zlib and crypto: each object inflated, resolved, hashed
 *    and, for a blob, checked for `needle` there and then. Pack and `.idx` (v2) are written to
 *    the cache directory, a bare git repository that git and isomorphic-git can read.
 * 4. The base tree is walked from cached, parsed trees; files whose bytes hold `needle` and
 *    whose path passes `includePath` are decoded (once) and handed to `edit`.
 * 5. The changed blobs, the trees above them and one commit (parent: the base head) go in one
 *    `git-receive-pack` request that force-updates `branch`; the answer is taken at the end of
 *    the report (hooks and `gc --auto` that follow are not waited for).
 * 6. The refs are read again: when the base moved, the promotion starts again on the new head
 *    (at most `maxAttempts` times, then GIT_PUSH_REJECTED, retryable).
 *
 * isomorphic-git's own clone path was measured first (bench/promotion.bench.ts, this machine):
 * `fetch` depth 1 + `readTree`/`readBlob` with a shared `cache` took 2.4 s + 5.2 s at 6,000 files
 * and 19 s + 40 s at 60,000 (git CLI clone: 0.5 s and 9 s): its pack indexing inflates with pako
 * and awaits one SHA-1 per object, each object read probes for a loose file and lists the pack
 * directory, and its push lists the objects of the whole tree twice.
 *
 * One directory per repository under `cacheDir`; promotions of one repository run one at a time
 * in a process (a promise lock per directory), and a process keeps up to 16 repositories in
 * memory (trees, needle hits, packs). Errors are PromoterError GIT_* codes whose messages name
 * the repository URL (without credentials) and the branch.
 *
 * Bounded work (DESIGN.md section 14): a fetch answer over `maxPackBytes`, an object or delta
 * that inflates past `maxObjectBytes`, a delta chain deeper than `maxDeltaDepth`, and a promotion
 * that outlives `promotionTimeoutMs` are refused with GIT_LIMIT_EXCEEDED (permanent), which
 * names the limit and where it is set. Every connection goes through agents that apply
 * `addressPolicy` to the address it reaches (HOST_REFUSED, permanent). Packs are parsed where
 * `packParsing` says: inline, or in a worker thread so that the caller's event loop stays free.
 *
 * This module holds the promotion loop (steps 1 to 6) and the scan of step 4; the parts are in
 * `./git/`: `smart-http.ts` (the requests of steps 1, 2, 5 and 6) over `pkt-line.ts`; `pack.ts`
 * (step 3, and the pack a push sends); `object-store.ts` (objects by oid from the cached packs);
 * `repository-cache.ts` (the cache directory, the lock, the caches of this process); `tree.ts`
 * (trees, needle hits, the commit of step 5); `errors.ts`.
 */

export interface IsomorphicGitConfigRepositoryOptions {
  /** Where the per-repository caches live (default `{os.tmpdir()}/pipeline-promoter-git`). */
  readonly cacheDir?: string;
  /** Promotions attempted when the base branch moves under the push (default 3). */
  readonly maxAttempts?: number;
  /** isomorphic-git's HTTP client (default `isomorphic-git/http/node`). */
  readonly http?: GitHttpClient;
  /** The file system the cache is written with (default `node:fs`). */
  readonly fs?: typeof nodeFs;
  /** Commit time (default: now). */
  readonly now?: () => Date;
  /** Received packs kept before the cache is dropped and fetched afresh (default 32). */
  readonly maxPacks?: number;
  /**
   * In-process retries of an idempotent read (the `info/refs` advertisements, the
   * `git-upload-pack` fetch) after a 5xx, 408, 429, a dropped connection or a cut answer
   * (default 3). Pushes are never retried in process; what is left goes to the queue.
   */
  readonly readRetries?: number;
  /** The first wait before such a retry in ms, later ones 4x and 8x it (default 250: 250 ms, 1 s, 2 s). */
  readonly retryBaseDelayMs?: number;
  /** The most bytes one fetch answer may have, the first fetch's too (default 256 MiB). */
  readonly maxPackBytes?: number;
  /** The largest object or delta once inflated (default 64 MiB). */
  readonly maxObjectBytes?: number;
  /** The longest delta chain (default 50, git's own `pack.depth`). */
  readonly maxDeltaDepth?: number;
  /**
   * The time one promotion's git work may take, from when it has the repository's lock
   * (default 90 000: 90 s, under the worker function's 120 s timeout).
   */
  readonly promotionTimeoutMs?: number;
  /** Where packs are parsed (default `inline`), or a parser of the caller's. */
  readonly packParsing?: PackParsing | PackParser;
  /**
   * Which addresses git may connect to, checked at connect time (default
   * SELF_HOSTED_ADDRESS_POLICY: public, loopback and private; the AWS worker passes the strict
   * one).
   */
  readonly addressPolicy?: AddressPolicy;
  /** Told of each connection the policy refused (HOST_REFUSED). */
  readonly onRefusedConnection?: (refusal: PromoterError) => void;
}

export const DEFAULT_PROMOTION_TIMEOUT_MS = GIT_LIMIT_DEFAULTS.promotionTimeoutMs;

/** isomorphic-git's client with the guarded agents (and, per promotion, the budget's signal). */
const guardedClient = (http: GitHttpClient, agents: GuardedAgents): GitHttpClient => ({
  request: async (request) => {
    try {
      return await http.request({ ...request, agent: agentFor(agents, request.url) });
    } catch (error) {
      // A redirect to the other scheme meets the first request's agent, which refuses it.
      if ((error as { code?: unknown } | undefined)?.code === 'ERR_INVALID_PROTOCOL') {
        throw new PromoterError(
          'HOST_REFUSED',
          `the git server at ${safeUrl(request.url)} redirected to another scheme, which is refused`,
          { data: { url: safeUrl(request.url) } },
        );
      }
      throw error;
    }
  },
});

interface Scan {
  readonly markedFiles: number;
  /** New file contents by path. */
  readonly changes: Map<string, Buffer>;
}

/** Walks the base tree: files with the needle that pass `includePath` go through `edit`. */
const scan = (
  cache: RepositoryCache,
  rootTree: string,
  request: PromotionBranchRequest,
  limits: PackLimits,
): Scan => {
  let markedFiles = 0;
  const changes = new Map<string, Buffer>();
  let trees = 0;
  let blobs = 0;
  const walk = (tree: Tree, prefix: string): void => {
    if (limits.deadline !== undefined && Date.now() > limits.deadline) {
      throw new LimitError(
        'promotionTimeout',
        'the promotion ran out of its time budget while reading the tree',
      );
    }
    const summary = cache.summary(tree);
    trees += 1;
    blobs += summary.blobs;
    for (const item of summary.items) {
      if (item.tree !== undefined) {
        walk(item.tree, `${prefix}${item.name}/`);
        continue;
      }
      const path = `${prefix}${item.name}`;
      if (!request.includePath(path)) continue;
      const { text, encoding } = item.hit.text;
      const edit = request.edit(path, text);
      if (edit.markers > 0) markedFiles += 1;
      if (edit.content !== text) changes.set(path, Buffer.from(edit.content, encoding));
    }
  };
  walk(cache.tree(rootTree), '');
  // Drop what the current head no longer reaches once it is most of what is kept.
  if (cache.trees.size > 2 * trees + 1024 || cache.blobs.size > 2 * blobs + 4096) {
    cache.prune(rootTree);
  }
  return { markedFiles, changes };
};

export class IsomorphicGitConfigRepository implements ConfigRepository {
  private readonly cacheDir: string;
  private readonly maxAttempts: number;
  private readonly http: GitHttpClient;
  private readonly fs: typeof nodeFs;
  private readonly now: () => Date;
  private readonly maxPacks: number;
  private readonly readRetry: ReadRetry;
  private readonly maxPackBytes: number;
  private readonly packLimits: PackLimits;
  private readonly promotionTimeoutMs: number;
  /** Where packs are parsed. */
  readonly packParser: PackParser;

  constructor(options: IsomorphicGitConfigRepositoryOptions = {}) {
    this.cacheDir = options.cacheDir ?? join(tmpdir(), 'pipeline-promoter-git');
    this.maxAttempts = Math.max(1, options.maxAttempts ?? 3);
    this.http = guardedClient(
      options.http ?? nodeHttp,
      createGuardedAgents(
        options.addressPolicy ?? SELF_HOSTED_ADDRESS_POLICY,
        options.onRefusedConnection === undefined ? {} : { onRefused: options.onRefusedConnection },
      ),
    );
    this.fs = options.fs ?? nodeFs;
    this.now = options.now ?? (() => new Date());
    this.maxPacks = options.maxPacks ?? 32;
    this.readRetry = {
      retries: Math.max(0, options.readRetries ?? DEFAULT_READ_RETRY.retries),
      baseDelayMs: Math.max(0, options.retryBaseDelayMs ?? DEFAULT_READ_RETRY.baseDelayMs),
    };
    this.maxPackBytes = options.maxPackBytes ?? DEFAULT_MAX_PACK_BYTES;
    this.packLimits = {
      maxObjectBytes: options.maxObjectBytes ?? DEFAULT_PACK_LIMITS.maxObjectBytes,
      maxDeltaDepth: options.maxDeltaDepth ?? DEFAULT_PACK_LIMITS.maxDeltaDepth,
    };
    this.promotionTimeoutMs = options.promotionTimeoutMs ?? DEFAULT_PROMOTION_TIMEOUT_MS;
    const parsing = options.packParsing ?? 'inline';
    this.packParser = typeof parsing === 'string' ? createPackParser(parsing) : parsing;
  }

  /** Stops the pack parser's worker threads, if any. */
  async close(): Promise<void> {
    await this.packParser.close();
  }

  /** The cache directory of a repository (one per clone URL, credentials left out). */
  cacheDirectoryFor(cloneUrl: string): string {
    return cacheDirectory(this.cacheDir, cloneUrl);
  }

  async preparePromotionBranch(request: PromotionBranchRequest): Promise<PromotionBranchResult> {
    const context: ErrorContext = {
      url: safeUrl(request.repository.cloneUrl),
      baseBranch: request.baseBranch,
      branch: request.branch,
      secrets: [request.credentials.password, ...urlPasswords(request.repository.cloneUrl)],
    };
    const directory = this.cacheDirectoryFor(request.repository.cloneUrl);
    return withLock(directory, async () => {
      const budget = new AbortController();
      const timer = setTimeout(() => budget.abort(), this.promotionTimeoutMs);
      timer.unref();
      const { signal } = budget;
      const remote: Remote = {
        url: request.repository.cloneUrl,
        http: { request: (call) => this.http.request({ ...call, signal }) },
        credentials: request.credentials,
        readRetry: this.readRetry,
        signal,
      };
      const limits: PackLimits = {
        ...this.packLimits,
        deadline: Date.now() + this.promotionTimeoutMs,
      };
      const fetch: FetchOptions = {
        maxPackBytes: this.maxPackBytes,
        limits,
        parser: this.packParser,
      };
      const cache = cacheFor(directory, this.fs);
      try {
        await cache.load();
        cache.useLimits(limits);
        if (cache.store.packs.length > this.maxPacks) await cache.reset();
        return await this.promote(cache, remote, fetch, request, context);
      } catch (error) {
        // A bad pack or a missing object: start the next attempt from an empty cache.
        if (error instanceof ProtocolError) await cache.reset().catch(() => undefined);
        if (signal.aborted && !(error instanceof PromoterError)) {
          throw toPromoterError(
            new LimitError(
              'promotionTimeout',
              `the promotion took longer than its ${this.promotionTimeoutMs / 1000} s time budget`,
            ),
            context,
          );
        }
        throw toPromoterError(error, context);
      } finally {
        clearTimeout(timer);
        await cache.flush();
      }
    });
  }

  private async promote(
    cache: RepositoryCache,
    remote: Remote,
    fetch: FetchOptions,
    request: PromotionBranchRequest,
    context: ErrorContext,
  ): Promise<PromotionBranchResult> {
    cache.useNeedle(request.needle);
    const baseRef = `refs/heads/${request.baseBranch}`;
    const branchRef = `refs/heads/${request.branch}`;
    // Both advertisements at once on first contact; later the receive-pack capabilities are
    // known and the upload-pack advertisement alone gives the heads.
    let advertisement: Advertisement;
    if (cache.receiveCapabilities === undefined) {
      const [upload, receive] = await Promise.all([
        discover(remote, 'git-upload-pack'),
        discover(remote, 'git-receive-pack'),
      ]);
      cache.receiveCapabilities = receive.capabilities;
      advertisement = upload;
    } else {
      advertisement = await discover(remote, 'git-upload-pack');
    }

    for (let attempt = 1; attempt <= this.maxAttempts; attempt++) {
      const base = advertisement.refs.get(baseRef);
      if (base === undefined) {
        throw new PromoterError(
          'GIT_BRANCH_NOT_FOUND',
          `base branch ${request.baseBranch} not found in ${context.url}`,
          { data: { url: context.url, baseBranch: request.baseBranch } },
        );
      }
      try {
        if (!cache.store.has(base)) {
          await fetchHead(cache, remote, advertisement, base, 'incremental', fetch);
          // A base reset to a commit older than what the cache holds: fetch it afresh.
          if (!cache.store.has(base)) {
            await fetchHead(cache, remote, advertisement, base, 'fresh', fetch);
          }
          cache.writeRefs(request.baseBranch, base);
        }
        const commit = cache.store.read(base);
        if (commit === undefined || commit.type !== 'commit') {
          throw new ProtocolError(`commit ${base} is missing after the fetch`);
        }
        const rootTree = commitTree(commit.content);
        const scanned = scan(cache, rootTree, request, fetch.limits);
        if (scanned.changes.size === 0) {
          return { status: 'unchanged', baseCommit: base, markedFiles: scanned.markedFiles };
        }
        const { oid, objects } = buildCommit(
          (tree) => cache.tree(tree),
          base,
          rootTree,
          scanned.changes,
          request.commit,
          () => this.now(),
        );
        const pushed = {
          status: 'pushed',
          baseCommit: base,
          commit: oid,
          changedFiles: [...scanned.changes.keys()],
        } as const;
        // The branch already holds this very commit (a redelivered job): nothing to push, and
        // the advertisement it was read from is the one that gave the base.
        if (advertisement.refs.get(branchRef) === oid) return pushed;
        await pushCommit(
          remote,
          advertisement,
          cache.receiveCapabilities,
          branchRef,
          oid,
          objects,
          context,
        );
        // The base must not have moved while we worked: else start again on its new head.
        advertisement = await discover(remote, 'git-upload-pack');
        if (advertisement.refs.get(baseRef) === base) return pushed;
      } catch (error) {
        if (!(error instanceof RaceError)) throw error;
        advertisement = await discover(remote, 'git-upload-pack');
      }
    }
    throw new PromoterError(
      'GIT_PUSH_REJECTED',
      `base branch ${request.baseBranch} of ${context.url} kept moving while ${request.branch} was pushed (${this.maxAttempts} attempts)`,
      {
        retryable: true,
        data: { url: context.url, baseBranch: request.baseBranch, branch: request.branch },
      },
    );
  }
}
