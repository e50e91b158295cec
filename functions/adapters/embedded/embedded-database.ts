import { closeSync, fdatasync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { PromoterError } from '../../core/errors.ts';

/*
 * The one database file of `promoter serve` (DESIGN.md section 12): its job queue, dead
 * letters, deployments and promotion records. SQLite through better-sqlite3 12: what users
 * expect of an embedded store, transactional, and it runs on the Node 20 and 22 that `serve`
 * meets (node:sqlite needs Node 22.13 and is still a release candidate).
 *
 * Write-ahead log, and nothing answered before it is on disk: what was answered 202 survives a
 * `kill -9` and a power cut alike. Writes go through `commitSoon`, which commits the writes of
 * concurrent requests together (group commit) and resolves them once the log is fsynced. That
 * fsync runs on libuv's thread pool, not in the commit (the connection that group-commits runs
 * with `synchronous = NORMAL` and syncs its log itself, `syncSoon`), so that the event loop goes
 * on answering requests while the disk works; writes committed during one fsync share the next.
 * A connection that never group-commits (`promoter dead-letters`) keeps `synchronous = FULL`.
 */

export type EmbeddedDatabase = Database.Database;

/** In memory, for unit tests: the same schema and rules, nothing on disk. */
export const IN_MEMORY = ':memory:';

const MIGRATIONS: readonly string[] = [
  `CREATE TABLE jobs (
     seq INTEGER PRIMARY KEY AUTOINCREMENT,
     id TEXT NOT NULL,
     group_id TEXT NOT NULL,
     body TEXT NOT NULL,
     state TEXT NOT NULL CHECK (state IN ('queued', 'dead')),
     receive_count INTEGER NOT NULL DEFAULT 0,
     available_at INTEGER NOT NULL,
     enqueued_at INTEGER NOT NULL,
     failure_code TEXT,
     failure_message TEXT,
     dead_lettered_at INTEGER
   );
   CREATE INDEX jobs_queued_by_group ON jobs (group_id, seq) WHERE state = 'queued';
   CREATE INDEX jobs_by_id ON jobs (id);
   CREATE TABLE seen_jobs (id TEXT PRIMARY KEY, seen_at INTEGER NOT NULL) WITHOUT ROWID;
   CREATE INDEX seen_jobs_by_time ON seen_jobs (seen_at);
   CREATE TABLE deployments (
     pipeline TEXT NOT NULL,
     environment TEXT NOT NULL,
     event_time INTEGER NOT NULL,
     record TEXT NOT NULL,
     PRIMARY KEY (pipeline, environment)
   ) WITHOUT ROWID;
   CREATE TABLE promotions (
     pipeline TEXT NOT NULL,
     environment TEXT NOT NULL,
     event_time INTEGER NOT NULL,
     record TEXT NOT NULL,
     PRIMARY KEY (pipeline, environment)
   ) WITHOUT ROWID;`,
  `CREATE TABLE incidents (
     pipeline TEXT NOT NULL,
     environment TEXT NOT NULL,
     opened_at TEXT NOT NULL,
     PRIMARY KEY (pipeline, environment)
   ) WITHOUT ROWID;
   CREATE TABLE deliveries (id TEXT PRIMARY KEY, expires_at INTEGER NOT NULL) WITHOUT ROWID;
   CREATE INDEX deliveries_by_expiry ON deliveries (expires_at);`,
  // Gates: deployments are kept per target (the environment column holds `env#target`,
  // core/state-records.ts), freezes by scope.
  'CREATE TABLE freezes (scope TEXT PRIMARY KEY, record TEXT NOT NULL) WITHOUT ROWID;',
];

/** The database file inside serve's data directory. */
export const databaseFile = (dataDir: string): string =>
  `${dataDir.replace(/\/+$/, '')}/promoter.db`;

/**
 * Opens (creating it and its directory when missing) and migrates the database at `path`.
 * A file that is not a database, or one written by a newer version, is INVALID_CONFIG naming it.
 *
 * @example
 * const db = openEmbeddedDatabase(databaseFile('.promoter'));
 */
export const openEmbeddedDatabase = (path: string): EmbeddedDatabase => {
  try {
    if (path !== IN_MEMORY) mkdirSync(dirname(path), { recursive: true });
    const db = new Database(path);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.pragma('busy_timeout = 5000');
    const version = Number(db.pragma('user_version', { simple: true }));
    if (version > MIGRATIONS.length) {
      db.close();
      throw new PromoterError(
        'INVALID_CONFIG',
        `${path} was written by a newer Pipeline Promoter (schema ${version}, this one knows ${MIGRATIONS.length})`,
      );
    }
    db.transaction(() => {
      for (const [index, sql] of MIGRATIONS.entries()) {
        if (index < version) continue;
        db.exec(sql);
      }
      db.pragma(`user_version = ${MIGRATIONS.length}`);
    })();
    return db;
  } catch (error) {
    if (error instanceof PromoterError) throw error;
    throw new PromoterError(
      'INVALID_CONFIG',
      `cannot open the database ${path}: ${error instanceof Error ? error.message : String(error)}`,
      { cause: error },
    );
  }
};

interface PendingWrite {
  readonly work: () => unknown;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
}

type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

/** The group commit of one connection. */
interface Committer {
  /** The writes asked for since the last commit. */
  pending: PendingWrite[];
  /** A commit at the end of this event-loop turn is on its way. */
  scheduled: boolean;
  /** Commits a batch in one transaction: each write's outcome, in order. */
  readonly commit: (batch: readonly PendingWrite[]) => Outcome[];
  /** The write-ahead log, fsynced off the event loop; undefined: in memory, nothing to sync. */
  readonly log: string | undefined;
  /** Told once the next fsync, one started after they were committed, has ended. */
  waiting: ((error: Error | null) => void)[];
  syncing: boolean;
}

const committers = new WeakMap<EmbeddedDatabase, Committer>();

const committerOf = (db: EmbeddedDatabase): Committer => {
  let committer = committers.get(db);
  if (committer !== undefined) return committer;
  // Made once per connection (db.transaction builds several wrappers: costly per write).
  const together = db.transaction((batch: readonly PendingWrite[]) =>
    batch.map(({ work }): Outcome => ({ ok: true, value: work() })),
  );
  const savepoint = db.transaction((work: () => unknown) => work());
  const apart = db.transaction((batch: readonly PendingWrite[]) =>
    batch.map(({ work }): Outcome => {
      try {
        return { ok: true, value: savepoint(work) };
      } catch (error) {
        return { ok: false, error };
      }
    }),
  );
  const wal =
    !db.memory && !db.readonly && String(db.pragma('journal_mode', { simple: true })) === 'wal';
  // Commits only write the log (what the kernel has survives a `kill -9`); `syncSoon` fsyncs
  // it before anyone is told. Checkpoints still fsync the log before and the database after.
  if (wal) db.pragma('synchronous = NORMAL');
  committer = {
    pending: [],
    scheduled: false,
    // The writes of a batch rarely throw: run them plainly, and only when one does, roll the
    // transaction back and run each in its own savepoint, so that it fails alone.
    commit: (batch) => {
      try {
        return together(batch);
      } catch {
        return apart(batch);
      }
    },
    log: wal ? `${db.name}-wal` : undefined,
    waiting: [],
    syncing: false,
  };
  committers.set(db, committer);
  return committer;
};

/** Fdatasyncs the log on the thread pool (the open and close are quick, not disk work). */
const fsyncLog = (path: string, done: (error: Error | null) => void): void => {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (error) {
    // No log: the last connection closed, after a checkpoint into the (fsynced) database file.
    const code = (error as NodeJS.ErrnoException).code;
    setImmediate(() => done(code === 'ENOENT' ? null : (error as Error)));
    return;
  }
  fdatasync(fd, (synced) => {
    closeSync(fd);
    done(synced);
  });
};

const startSync = (db: EmbeddedDatabase, committer: Committer, log: string): void => {
  const told = committer.waiting;
  committer.waiting = [];
  committer.syncing = true;
  fsyncLog(log, (error) => {
    committer.syncing = false;
    for (const tell of told) tell(error);
    // What was asked for during this fsync is committed now, and shares the next one.
    if (committer.pending.length > 0) commitPending(db, committer);
    else if (committer.waiting.length > 0) startSync(db, committer, log);
  });
};

/**
 * Calls `then` once everything `db` has committed so far is on disk: at once in memory, else
 * after the next fsync of the log (one under way may have begun before the commit). Without
 * `then`, only sees that such an fsync comes: the queue's own writes (a receive counted, a job
 * done) call it after committing, and are on disk moments later, without waiting for it.
 */
export const syncSoon = (db: EmbeddedDatabase, then?: (error: Error | null) => void): void => {
  const committer = committerOf(db);
  if (committer.log === undefined) {
    then?.(null);
    return;
  }
  committer.waiting.push(then ?? (() => undefined));
  if (!committer.syncing) startSync(db, committer, committer.log);
};

/**
 * Runs `work` inside the next group commit of `db`, and resolves with what it returned once
 * that commit is on disk (rejects with what it threw). The writes asked for in one event-loop
 * turn, or during one fsync of the log, are committed in one transaction, and share the fsync
 * that follows. A write that throws rolls back alone; `work` may then run twice (the batch is
 * rolled back and run again, each write in its own savepoint): it must only use the database.
 *
 * @example
 * const written = await commitSoon(db, () => insert.run(id).changes === 1);
 */
export const commitSoon = <T>(db: EmbeddedDatabase, work: () => T): Promise<T> =>
  new Promise<T>((resolve, reject) => {
    const committer = committerOf(db);
    committer.pending.push({ work, resolve: resolve as (value: unknown) => void, reject });
    if (committer.scheduled || committer.syncing) return;
    committer.scheduled = true;
    setImmediate(() => {
      committer.scheduled = false;
      // An fsync began meanwhile: its end commits these.
      if (!committer.syncing) commitPending(db, committer);
    });
  });

const commitPending = (db: EmbeddedDatabase, committer: Committer): void => {
  const batch = committer.pending;
  committer.pending = [];
  if (batch.length === 0) return;
  let outcomes: Outcome[];
  try {
    outcomes = committer.commit(batch);
  } catch (error) {
    for (const { reject } of batch) reject(error);
    return;
  }
  syncSoon(db, (error) => {
    for (const [index, { resolve, reject }] of batch.entries()) {
      const outcome = outcomes[index];
      if (error !== null) reject(error);
      else if (outcome?.ok === true) resolve(outcome.value);
      else reject(outcome?.error);
    }
  });
};
