import { type FSWatcher, watch } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import type { LogPort } from '../core/logger.ts';
import { type Pipeline, type PipelineRef, pipelineId } from '../core/pipeline.ts';
import {
  describeInvalidPipeline,
  type InvalidPipeline,
  parsePipelineManifests,
} from '../core/pipeline-manifest.ts';
import type { PipelineStore } from '../core/ports.ts';

const MANIFEST_EXTENSIONS = new Set(['.yaml', '.yml', '.json']);

/**
 * `promoter serve`'s pipelines: a manifest file, or a directory of YAML/JSON manifests (what
 * `kubectl get pipelines -o yaml` prints, or the Pipeline files of a repository). Invalid
 * pipelines are logged with their errors and left out; the others are served. With `watch`,
 * the files are read again when they change.
 */
export class FilePipelineStore implements PipelineStore {
  private pipelines = new Map<string, Pipeline>();
  private invalidPipelines: InvalidPipeline[] = [];
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

  async reload(): Promise<void> {
    const files = (await stat(this.path)).isDirectory()
      ? (await readdir(this.path))
          .filter((file) => MANIFEST_EXTENSIONS.has(extname(file)))
          .sort()
          .map((file) => join(this.path, file))
      : [this.path];
    const pipelines = new Map<string, Pipeline>();
    const invalid: InvalidPipeline[] = [];
    for (const file of files) {
      const parsed = parsePipelineManifests(await readFile(file, 'utf8'), file);
      invalid.push(...parsed.invalid);
      for (const pipeline of parsed.pipelines) {
        const id = pipelineId(pipeline);
        if (pipelines.has(id)) invalid.push({ id, errors: [`defined again in ${file}`] });
        else pipelines.set(id, pipeline);
      }
    }
    this.pipelines = pipelines;
    this.invalidPipelines = invalid;
    for (const entry of invalid)
      this.logger.error(describeInvalidPipeline(entry), { pipeline: entry.id });
    this.logger.info('pipelines loaded', {
      source: this.path,
      pipelines: [...pipelines.keys()],
      invalid: invalid.length,
    });
  }

  /** Reloads (debounced) when the file or directory changes, until `close`. */
  watch(): void {
    if (this.watcher !== undefined) return;
    this.watcher = watch(this.path, { persistent: false }, () => {
      clearTimeout(this.reloadTimer);
      this.reloadTimer = setTimeout(() => {
        this.reload().catch((error: unknown) =>
          this.logger.error('pipelines reload failed; keeping the previous set', {
            source: this.path,
            error: error instanceof Error ? error.message : String(error),
          }),
        );
      }, 200);
    });
  }

  close(): void {
    clearTimeout(this.reloadTimer);
    this.watcher?.close();
    this.watcher = undefined;
  }
}
