import { type PipelineRef, pipelineId } from './pipeline.ts';
import {
  type InvalidPipeline,
  type ParsedPipelines,
  parsePipelineManifests,
} from './pipeline-manifest.ts';
import type { PipelinePutResult, PipelineRegistry, SecretStore } from './ports.ts';
import { type SharedKeyWarning, sharedKeyWarnings } from './shared-key-warnings.ts';
import { compareText } from './text-order.ts';
import { hasNoDocuments } from './yaml-documents.ts';

/*
 * The pipeline sync (`PUT /pipelines`, `promoter sync`): what `kubectl get
 * pipelines.pipelines.weave.works -A -o yaml|json` prints goes in, every valid pipeline is put
 * into the registry (which does not rewrite an unchanged definition), every invalid one is
 * reported with its errors, and with `prune` the stored pipelines absent from the input are
 * deleted.
 *
 * Prune never deletes a pipeline the input may still hold:
 * - an invalid item that names its pipeline (`metadata.namespace`/`metadata.name` were readable)
 *   keeps the stored definition of that pipeline: a typo in a Pipeline resource must not stop
 *   its promotions, the last valid definition stays until the resource is fixed or deleted
 *   (reported in `prune.kept`);
 * - an invalid item that names no pipeline (a YAML syntax error, a document without metadata)
 *   could be any pipeline, so prune is skipped altogether (`prune.performed` false, with the
 *   reason), the valid pipelines are still put;
 * - an input with no document at all (an empty body: kubectl failed in a pipe) is never pruned.
 *   An empty `List` (`items: []`, what kubectl prints when there are no pipelines) is a real
 *   answer and prunes everything.
 * The valid pipelines are put before anything is deleted; a store failure stops the sync with
 * the error (a retry is safe: puts of unchanged definitions are no-ops).
 *
 * With a secret store, the answer's `warnings` name the valid pipelines whose environments share
 * a webhook key (shared-key-warnings.ts); they are stored all the same.
 */

export interface PipelineSyncOptions {
  /** Delete stored pipelines absent from the input (see above for when it is skipped). */
  readonly prune?: boolean;
  /** Concurrent store writes; 8 unless told. */
  readonly concurrency?: number;
  /** Where the pipelines' secrets are read, for `warnings`; without it there are none. */
  readonly secrets?: SecretStore;
}

export interface PruneReport {
  readonly requested: boolean;
  readonly performed: boolean;
  /** Why prune was skipped (only when requested and not performed). */
  readonly reason?: string;
  /** Stored pipelines absent from the valid set but kept because the input has them invalid. */
  readonly kept: readonly string[];
}

export interface PipelineSyncCounts {
  readonly created: number;
  readonly updated: number;
  readonly unchanged: number;
  readonly deleted: number;
  readonly invalid: number;
}

export interface PipelineSyncResult {
  readonly counts: PipelineSyncCounts;
  /** `namespace/name`, sorted. */
  readonly created: readonly string[];
  readonly updated: readonly string[];
  readonly unchanged: readonly string[];
  readonly deleted: readonly string[];
  readonly invalid: readonly InvalidPipeline[];
  readonly prune: PruneReport;
  /** Valid pipelines whose environments share a webhook key, sorted by pipeline. */
  readonly warnings: readonly SharedKeyWarning[];
}

const DEFAULT_CONCURRENCY = 8;

/** A Kubernetes `namespace/name` (DNS labels: no spaces, no slashes), not a `document N` id. */
const NAMED_ID = /^[^\s/]+\/[^\s/]+$/;

/** True when the text holds no YAML/JSON document with content (empty, blank, comments). */
export { hasNoDocuments } from './yaml-documents.ts';

const mapLimit = async <T, R>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<R>,
): Promise<R[]> => {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next;
      next += 1;
      results[index] = await work(items[index] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return results;
};

/** Syncs already parsed pipelines into the registry. */
export const syncPipelines = async (
  registry: PipelineRegistry,
  parsed: ParsedPipelines,
  options: PipelineSyncOptions & { readonly emptyInput?: boolean } = {},
): Promise<PipelineSyncResult> => {
  const concurrency = options.concurrency ?? DEFAULT_CONCURRENCY;
  const outcomes = await mapLimit(parsed.pipelines, concurrency, async (pipeline) => ({
    id: pipelineId(pipeline),
    result: await registry.put(pipeline),
  }));
  const by = (result: PipelinePutResult): string[] =>
    outcomes
      .filter((outcome) => outcome.result === result)
      .map((outcome) => outcome.id)
      .sort(compareText);
  const invalid = [...parsed.invalid].sort((a, b) => compareText(a.id, b.id));

  const { prune, deleted } = await pruneAbsent(registry, parsed, invalid, options, concurrency);
  const { secrets } = options;
  const warnings =
    secrets === undefined
      ? []
      : (
          await mapLimit(parsed.pipelines, concurrency, (pipeline) =>
            sharedKeyWarnings(pipeline, secrets),
          )
        )
          .flat()
          .sort((a, b) => compareText(a.id, b.id));
  const created = by('created');
  const updated = by('updated');
  const unchanged = by('unchanged');
  return {
    counts: {
      created: created.length,
      updated: updated.length,
      unchanged: unchanged.length,
      deleted: deleted.length,
      invalid: invalid.length,
    },
    created,
    updated,
    unchanged,
    deleted,
    invalid,
    prune,
    warnings,
  };
};

const pruneAbsent = async (
  registry: PipelineRegistry,
  parsed: ParsedPipelines,
  invalid: readonly InvalidPipeline[],
  options: PipelineSyncOptions & { readonly emptyInput?: boolean },
  concurrency: number,
): Promise<{ prune: PruneReport; deleted: string[] }> => {
  if (options.prune !== true) {
    return { prune: { requested: false, performed: false, kept: [] }, deleted: [] };
  }
  const skipped = (reason: string) => ({
    prune: { requested: true, performed: false, reason, kept: [] },
    deleted: [],
  });
  if (options.emptyInput === true) {
    return skipped('the input holds no document: nothing is deleted on an empty input');
  }
  const unnamed = invalid.filter((entry) => !NAMED_ID.test(entry.id));
  if (unnamed.length > 0) {
    return skipped(
      `${unnamed.length} invalid item(s) name no pipeline (${unnamed.map((entry) => entry.id).join(', ')}): any stored pipeline could be one of them, so nothing is deleted`,
    );
  }
  const present = new Set(parsed.pipelines.map(pipelineId));
  const invalidIds = new Set(invalid.map((entry) => entry.id));
  const absent: PipelineRef[] = [];
  const kept: string[] = [];
  for (const stored of await registry.list()) {
    const id = pipelineId(stored);
    if (present.has(id)) continue;
    if (invalidIds.has(id)) kept.push(id);
    else absent.push({ namespace: stored.namespace, name: stored.name });
  }
  const removed = await mapLimit(absent, concurrency, async (ref) =>
    (await registry.delete(ref)) ? pipelineId(ref) : undefined,
  );
  return {
    prune: { requested: true, performed: true, kept: kept.sort(compareText) },
    deleted: removed.filter((id): id is string => id !== undefined).sort(compareText),
  };
};

/** Parses `kubectl get pipelines ... -o yaml|json` output and syncs it (see the module notes). */
export const syncPipelineManifests = (
  registry: PipelineRegistry,
  text: string,
  options: PipelineSyncOptions = {},
): Promise<PipelineSyncResult> =>
  syncPipelines(registry, parsePipelineManifests(text, 'input'), {
    ...options,
    emptyInput: hasNoDocuments(text),
  });
