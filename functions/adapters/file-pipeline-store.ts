import { type FSWatcher, statSync, watch } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';
import type { LogPort } from '../core/logger.ts';
import { type Pipeline, type PipelineRef, pipelineId } from '../core/pipeline.ts';
import {
  describeInvalidPipeline,
  type InvalidPipeline,
  type ParsedPipelines,
  parsePipelineManifests,
} from '../core/pipeline-manifest.ts';
import { MAX_SYNC_BODY_BYTES } from '../core/pipelines-api.ts';
import type { PipelineStore } from '../core/ports.ts';

const MANIFEST_EXTENSIONS = new Set(['.yaml', '.yml', '.json']);

/** The same bound as a `PUT /pipelines` body: a larger file is not read. */
export const MAX_PIPELINE_FILE_BYTES = MAX_SYNC_BODY_BYTES;

/** A Kubernetes `namespace/name`, not a `FILE document N` position. */
const NAMED_ID = /^[^\s/]+\/[^\s/]+$/;

type FileRead = { readonly parsed: ParsedPipelines } | { readonly unreadable: string };

/**
 * `promoter serve`'s pipelines: a manifest file, or a directory of YAML/JSON manifests (what
 * `kubectl get pipelines -o yaml` prints, or the Pipeline files of a repository). Invalid
 * pipelines are logged with their errors and left out; the others are served. With `watch`,
 * the files are read again when they change.
 *
 * A file saved with a mistake does not take its pipelines away: a pipeline that a file held at
 * the last reload keeps that definition while the file has it invalid, and all of them are
 * kept while the file is unreadable (over `MAX_PIPELINE_FILE_BYTES`, a read error) or has a
 * document that names no pipeline (invalid YAML, nested too deep, an alias bomb), since that
 * document could be any of them. Each one kept is logged; removing it from the file (or the
 * file) removes it.
 */
export class FilePipelineStore implements PipelineStore {
  private pipelines = new Map<string, Pipeline>();
  private invalidPipelines: InvalidPipeline[] = [];
  /** What each file served at the last reload, its kept definitions included. */
  private servedByFile = new Map<string, Map<string, Pipeline>>();
  private watcher: FSWatcher | undefined;
  private reloadTimer: NodeJS.Timeout | undefined;

  private constructor(
    private readonly path: string,
    private readonly logger: LogPort,
  ) {}

  static async load(path: string, logger: LogPort): Promise<FilePipelineStore> {
    const store = new FilePipelineStore(path, logger);
    await store.reload();
    return store;
  }

  async get(ref: PipelineRef): Promise<Pipeline | undefined> {
    return this.pipelines.get(pipelineId(ref));
  }

  list(): Pipeline[] {
    return [...this.pipelines.values()];
  }

  invalid(): readonly InvalidPipeline[] {
    return this.invalidPipelines;
  }

  private async readManifests(file: string): Promise<FileRead> {
    try {
      const size = (await stat(file)).size;
      if (size > MAX_PIPELINE_FILE_BYTES) {
        return {
          unreadable: `${size} bytes, over ${MAX_PIPELINE_FILE_BYTES}: not read; split it into smaller files`,
        };
      }
      return { parsed: parsePipelineManifests(await readFile(file, 'utf8'), file) };
    } catch (error) {
      return {
        unreadable: `not readable: ${error instanceof Error ? error.message : String(error)}`,
      };
    }
  }

  async reload(): Promise<void> {
    const files = (await stat(this.path)).isDirectory()
      ? (await readdir(this.path))
          .filter((file) => MANIFEST_EXTENSIONS.has(extname(file)))
          .sort()
          .map((file) => join(this.path, file))
      : [this.path];
    const pipelines = new Map<string, Pipeline>();
    const invalid: InvalidPipeline[] = [];
    const served = new Map<string, Map<string, Pipeline>>();
    const keep: { file: string; id: string; pipeline: Pipeline; reason: string }[] = [];
    for (const file of files) {
      const read = await this.readManifests(file);
      const previous = this.servedByFile.get(file) ?? new Map<string, Pipeline>();
      const valid = new Map<string, Pipeline>();
      served.set(file, valid);
      if ('unreadable' in read) {
        invalid.push({ id: file, errors: [read.unreadable] });
        for (const [id, pipeline] of previous) {
          keep.push({ file, id, pipeline, reason: 'the file is unreadable' });
        }
        continue;
      }
      invalid.push(...read.parsed.invalid);
      for (const pipeline of read.parsed.pipelines) {
        const id = pipelineId(pipeline);
        if (pipelines.has(id)) invalid.push({ id, errors: [`defined again in ${file}`] });
        else {
          pipelines.set(id, pipeline);
          valid.set(id, pipeline);
        }
      }
      const invalidIds = new Set(read.parsed.invalid.map((entry) => entry.id));
      const unnamed = [...invalidIds].find((id) => !NAMED_ID.test(id));
      for (const [id, pipeline] of previous) {
        if (valid.has(id)) continue;
        if (invalidIds.has(id))
          keep.push({ file, id, pipeline, reason: 'it is invalid in the file' });
        else if (unnamed !== undefined) {
          keep.push({ file, id, pipeline, reason: `${unnamed} names no pipeline` });
        }
      }
    }
    // Valid definitions first: a pipeline moved to another file is served from there.
    for (const { file, id, pipeline, reason } of keep) {
      if (pipelines.has(id)) continue;
      pipelines.set(id, pipeline);
      served.get(file)?.set(id, pipeline);
      this.logger.warn('keeping the last valid definition of a pipeline', {
        pipeline: id,
        source: file,
        reason,
      });
    }
    this.pipelines = pipelines;
    this.invalidPipelines = invalid;
    this.servedByFile = served;
    for (const entry of invalid)
      this.logger.error(describeInvalidPipeline(entry), { pipeline: entry.id });
    this.logger.info('pipelines loaded', {
      source: this.path,
      pipelines: [...pipelines.keys()],
      invalid: invalid.length,
    });
  }

  /**
   * Reloads (debounced) when the file or directory changes, until `close`. A single file is
   * watched through its directory: editors save by writing a new file and renaming it over the
   * old one, and a watch on the old file would see that first save and no later one.
   */
  watch(): void {
    if (this.watcher !== undefined) return;
    const single = !statSync(this.path).isDirectory();
    const name = basename(this.path);
    this.watcher = watch(
      single ? dirname(this.path) : this.path,
      { persistent: false },
      (_event, changed) => {
        if (single && changed !== null && changed !== name) return;
        clearTimeout(this.reloadTimer);
        this.reloadTimer = setTimeout(() => {
          this.reload().catch((error: unknown) =>
            this.logger.error('pipelines reload failed; keeping the previous set', {
              source: this.path,
              error: error instanceof Error ? error.message : String(error),
            }),
          );
        }, 200);
      },
    );
  }

  close(): void {
    clearTimeout(this.reloadTimer);
    this.watcher?.close();
    this.watcher = undefined;
  }
}
