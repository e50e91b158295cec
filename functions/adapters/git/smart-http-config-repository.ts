import * as nodeFs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PromoterError } from '../../core/errors.ts';
import { type AddressPolicy, SELF_HOSTED_ADDRESS_POLICY } from '../../core/http.ts';
import type {
  ConfigRepository,
  PromotionBranchRequest,
  PromotionBranchResult,
} from '../../core/ports.ts';
import { createGuardedAgents, guardedFetch } from '../guarded-http.ts';
import {
  type ErrorContext,
  LimitError,
  mebibytes,
  ProtocolError,
  RaceError,
  safeUrl,
  toPromoterError,
  urlPasswords,
} from './errors.ts';
import { GIT_LIMIT_DEFAULTS } from './limits.ts';
import { DEFAULT_PACK_LIMITS, type PackLimits } from './pack.ts';
import { createPackParser, type PackParser, type PackParsing } from './pack-parser.ts';
import {
  DEFAULT_CACHED_REPOSITORIES,
  type FetchMode,
  type RepositoryCache,
  RepositoryCaches,
} from './repository-cache.ts';
import {
  type Advertisement,
  DEFAULT_MAX_PACK_BYTES,
  DEFAULT_READ_RETRY,
  discover,
  type GitFetch,
  pushCommit,
  type ReadRetry,
  type Remote,
  requestPack,
} from './smart-http.ts';
import { buildCommit, commitTree, type Tree } from './tree.ts';

/*
 * The ConfigRepository port over git smart HTTP: the promotion loop and the scan of the base
 * tree. functions/adapters/git/README.md says what each step sends and reads, the formats, the
 * limits and the cache. Per promotion, under the repository's lock:
 *
 * 1. Read the refs (`info/refs`); on first contact the receive-pack advertisement too.
 * 2. Unless the cache holds the base head: one `git-upload-pack` request for it (depth 1 at
 *    first, then a thin pack of what is new), its pack indexed into the cache.
 * 3. Walk the base tree; files whose bytes hold `needle` and whose path passes `includePath`
 *    are decoded (once) and handed to `edit`.
 * 4. The changed blobs, the trees above them and one commit go in one `git-receive-pack` request
 *    that force-updates `branch`.
 * 5. Read the refs again: when the base moved, start again on its new head (`maxAttempts`).
 */

export interface SmartHttpConfigRepositoryOptions {
  /**
   * Where the per-repository caches live on disk (default `{os.tmpdir()}/pipeline-promoter-git`);
   * `false`: in memory only (what is dropped from memory is fetched afresh).
   */
  readonly cacheDir?: string | false;
  /** Repositories kept in memory, least recently used dropped first (default 16). */
  readonly maxCachedRepositories?: number;
  /** Promotions attempted when the base branch moves under the push (default 3). */
  readonly maxAttempts?: number;
  /**
   * The fetch git requests go through (default: `guardedFetch` over agents that apply
   * `addressPolicy`). A fetch given here is used as it is: the address policy is its own.
   */
  readonly fetch?: GitFetch;
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
  cache.pruneUnreached(rootTree, { trees, blobs });
  return { markedFiles, changes };
};

/** How a fetch reads its pack. */
interface FetchOptions {
  /** The most bytes one `git-upload-pack` answer may have, the first fetch's included. */
  readonly maxPackBytes: number;
  readonly limits: PackLimits;
  readonly parser: PackParser;
}

/**
 * Fetches `head` into `cache` (see `RepositoryCache.packRequest` for what each mode asks). An
 * incremental answer that grows past its bound (history rewritten, no common commit) is dropped
 * for a depth-1 fetch; any other answer over `maxPackBytes` is refused (LimitError).
 */
const fetchInto = async (
  cache: RepositoryCache,
  remote: Remote,
  advertisement: Advertisement,
  head: string,
  mode: FetchMode,
  options: FetchOptions,
): Promise<void> => {
  const request = cache.packRequest(head, mode, options.maxPackBytes);
  const answer = await requestPack(remote, advertisement, request);
  if (answer === undefined) {
    if (request.depthOne) {
      throw new LimitError(
        'maxPackBytes',
        `the git server sent more than ${mebibytes(options.maxPackBytes)} for one fetch, the limit on pack bytes`,
      );
    }
    await fetchInto(cache, remote, advertisement, head, 'depth-1', options);
    return;
  }
  await cache.addFetched(head, answer, options.parser, options.limits);
};

export class SmartHttpConfigRepository implements ConfigRepository {
  private readonly caches: RepositoryCaches;
  private readonly maxAttempts: number;
  private readonly fetch: GitFetch;
  private readonly now: () => Date;
  private readonly maxPacks: number;
  private readonly readRetry: ReadRetry;
  private readonly maxPackBytes: number;
  private readonly packLimits: PackLimits;
  private readonly promotionTimeoutMs: number;
  /** Where packs are parsed. */
  readonly packParser: PackParser;

  constructor(options: SmartHttpConfigRepositoryOptions = {}) {
    const cacheDir = options.cacheDir ?? join(tmpdir(), 'pipeline-promoter-git');
    this.caches = new RepositoryCaches(
      cacheDir === false ? undefined : cacheDir,
      options.fs ?? nodeFs,
      Math.max(1, options.maxCachedRepositories ?? DEFAULT_CACHED_REPOSITORIES),
    );
    this.maxAttempts = Math.max(1, options.maxAttempts ?? 3);
    this.fetch =
      options.fetch ??
      guardedFetch(
        createGuardedAgents(
          options.addressPolicy ?? SELF_HOSTED_ADDRESS_POLICY,
          options.onRefusedConnection === undefined
            ? {}
            : { onRefused: options.onRefusedConnection },
        ),
      );
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

  /**
   * The cache directory of a repository (one per clone URL, credentials left out). Throws when
   * the cache is in memory only (`cacheDir: false`).
   */
  cacheDirectoryFor(cloneUrl: string): string {
    const directory = this.caches.directoryFor(cloneUrl);
    if (directory === undefined) throw new Error('this adapter keeps its cache in memory only');
    return directory;
  }

  async preparePromotionBranch(request: PromotionBranchRequest): Promise<PromotionBranchResult> {
    const context: ErrorContext = {
      url: safeUrl(request.repository.cloneUrl),
      baseBranch: request.baseBranch,
      branch: request.branch,
      secrets: [request.credentials.password, ...urlPasswords(request.repository.cloneUrl)],
    };
    return this.caches.withRepository(request.repository.cloneUrl, async (cache) => {
      const budget = new AbortController();
      const timer = setTimeout(() => budget.abort(), this.promotionTimeoutMs);
      timer.unref();
      const { signal } = budget;
      const remote: Remote = {
        url: request.repository.cloneUrl,
        fetch: this.fetch,
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
      // Both settle before either failure is thrown: no request outlives the promotion.
      const [upload, receive] = await Promise.allSettled([
        discover(remote, 'git-upload-pack', fetch.maxPackBytes),
        discover(remote, 'git-receive-pack', fetch.maxPackBytes),
      ]);
      if (upload.status === 'rejected') throw upload.reason;
      if (receive.status === 'rejected') throw receive.reason;
      cache.rememberReceiveCapabilities(receive.value.capabilities);
      advertisement = upload.value;
    } else {
      advertisement = await discover(remote, 'git-upload-pack', fetch.maxPackBytes);
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
          await fetchInto(cache, remote, advertisement, base, 'incremental', fetch);
          // A base reset to a commit older than what the cache holds: fetch it afresh.
          if (!cache.store.has(base)) {
            await fetchInto(cache, remote, advertisement, base, 'fresh', fetch);
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
        advertisement = await discover(remote, 'git-upload-pack', fetch.maxPackBytes);
        if (advertisement.refs.get(baseRef) === base) return pushed;
      } catch (error) {
        if (!(error instanceof RaceError)) throw error;
        advertisement = await discover(remote, 'git-upload-pack', fetch.maxPackBytes);
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
