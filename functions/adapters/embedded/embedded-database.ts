import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { PromoterError } from '../../core/errors.ts';

/**
 * The one database file of `promoter serve` (DESIGN.md section 12): its job queue, dead
 * letters, deployments and promotion records. SQLite through better-sqlite3 12: what users
 * expect of an embedded store, transactional, and it runs on the Node 20 and 22 that `serve`
 * meets (node:sqlite needs Node 22.13 and is still a release candidate).
 *
 * Write-ahead log with `synchronous = FULL`: a commit is on disk (fsync) before it returns, so
 * what was answered 202 survives a `kill -9` and a power cut alike. Writes go through
 * `commitSoon`, which commits the writes of concurrent requests together (group commit), so
 * that the fsync is paid once per event-loop turn rather than once per request.
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

const batches = new WeakMap<EmbeddedDatabase, PendingWrite[]>();

/**
 * Runs `work` inside the next group commit of `db`: every write asked for in this event-loop
 * turn runs in one transaction, each in its own savepoint (one that throws rolls back alone
 * and rejects its own promise), and the promises resolve once the transaction is on disk.
 *
 * @example
 * const written = await commitSoon(db, () => insert.run(id).changes === 1);
 */
export const commitSoon = <T>(db: EmbeddedDatabase, work: () => T): Promise<T> =>
  new Promise<T>((resolve, reject) => {
    let batch = batches.get(db);
    if (batch === undefined) {
      batch = [];
      batches.set(db, batch);
      setImmediate(() => commitBatch(db));
    }
    batch.push({ work, resolve: resolve as (value: unknown) => void, reject });
  });

const commitBatch = (db: EmbeddedDatabase): void => {
  const batch = batches.get(db) ?? [];
  batches.delete(db);
  const outcomes: ({ ok: true; value: unknown } | { ok: false; error: unknown })[] = [];
  try {
    db.transaction(() => {
      for (const { work } of batch) {
        try {
          outcomes.push({ ok: true, value: db.transaction(work)() });
        } catch (error) {
          outcomes.push({ ok: false, error });
        }
      }
    })();
  } catch (error) {
    for (const { reject } of batch) reject(error);
    return;
  }
  for (const [index, { resolve, reject }] of batch.entries()) {
    const outcome = outcomes[index];
    if (outcome?.ok === true) resolve(outcome.value);
    else reject(outcome?.error);
  }
};
