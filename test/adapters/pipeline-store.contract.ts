import { describe, expect, it } from 'vitest';
import { type Pipeline, pipelineId } from '../../functions/core/pipeline.ts';
import { parsePipelineManifests } from '../../functions/core/pipeline-manifest.ts';
import type { PipelineStore } from '../../functions/core/ports.ts';
import { compareText } from '../../functions/core/text-order.ts';
import { readFixture } from '../support/fixtures.ts';

/*
 * The behaviour every PipelineStore shares (DynamoDB on moto, serve's manifest files, the
 * read-through cache): a pipeline comes back as the manifest parser normalised it, settings
 * annotations included; a pipeline the manifests do not hold is undefined; `list`, where the
 * store has one, holds the same pipelines; and once the definitions change as their owner
 * changes them (a sync, a file saved and reloaded, a cache told to forget), the store answers
 * with the new ones.
 */

export interface ContractPipelineStore {
  readonly store: PipelineStore & { list?(): Pipeline[] | Promise<Pipeline[]> };
  /** Replaces every definition with those of `manifests`, as the store's owner does. */
  replace(manifests: string): Promise<void>;
}

/** `manifests`: Pipeline manifests (YAML, documents separated by `---`). */
export type MakePipelineStore = (manifests: string) => Promise<ContractPipelineStore>;

const PODINFO = readFixture('pipelines/podinfo.yaml');
const SEARCH = readFixture('pipelines/search-rfc-draft.yaml');
const APPS = readFixture('pipelines/list-from-kubectl.yaml');

/** podinfo with every kind of setting (gate, soak, window, auto-merge), the stored shape's corners. */
const PODINFO_WITH_SETTINGS = PODINFO.replace(
  /^( {2}namespace: flux-system\n)/m,
  `$1  annotations:
    pipeline-promoter/gate: any
    pipeline-promoter/soak.prod: 30m
    pipeline-promoter/window.prod: Mon-Fri 09:00-17:00 Europe/Berlin
    pipeline-promoter/auto-merge: 'true'
`,
);

const manifests = (...texts: string[]): string => texts.join('\n---\n');

const parsed = (text: string): Pipeline[] => {
  const result = parsePipelineManifests(text, 'contract');
  expect(result.invalid).toEqual([]);
  return result.pipelines;
};

const byId = (pipelines: readonly Pipeline[]): Pipeline[] =>
  [...pipelines].sort((a, b) => compareText(pipelineId(a), pipelineId(b)));

export const describePipelineStoreContract = (name: string, make: MakePipelineStore): void => {
  describe(`${name}: the PipelineStore contract`, () => {
    it('gets each pipeline as the manifests normalise it, settings included', async () => {
      // Prepare
      const text = manifests(PODINFO_WITH_SETTINGS, SEARCH);
      const expected = parsed(text);
      const { store } = await make(text);

      // Act
      const got = await Promise.all(expected.map((pipeline) => store.get(pipeline)));

      // Assess
      expect(expected[0]?.settings?.into.prod?.window?.timeZone).toBe('Europe/Berlin');
      expect(got).toEqual(expected);
    });

    it('answers a pipeline the manifests do not hold with undefined', async () => {
      // Prepare
      const { store } = await make(PODINFO);

      // Act
      const missing = await Promise.all([
        store.get({ namespace: 'flux-system', name: 'search' }),
        store.get({ namespace: 'podinfo', name: 'flux-system' }),
        store.get({ namespace: 'other', name: 'podinfo' }),
      ]);

      // Assess
      expect(missing).toEqual([undefined, undefined, undefined]);
    });

    it('lists the same pipelines, where it lists', async ({ skip }) => {
      // Prepare
      const text = manifests(PODINFO, SEARCH, APPS);
      const { store } = await make(text);
      if (store.list === undefined) skip('this store only gets');

      // Act
      const listed = await store.list?.();

      // Assess
      expect(byId(listed ?? [])).toEqual(byId(parsed(text)));
    });

    it('answers with the new definitions once they are replaced: changed, added, removed', async () => {
      // Prepare
      const { store, replace } = await make(manifests(PODINFO, SEARCH));
      await store.get({ namespace: 'flux-system', name: 'podinfo' });
      const next = manifests(PODINFO_WITH_SETTINGS, APPS);
      const [podinfo, apps] = parsed(next);

      // Act
      await replace(next);
      const answers = await Promise.all([
        store.get({ namespace: 'flux-system', name: 'podinfo' }),
        store.get({ namespace: 'flux-system', name: 'apps' }),
        store.get({ namespace: 'shopping', name: 'search' }),
      ]);

      // Assess
      expect(answers).toEqual([podinfo, apps, undefined]);
    });
  });
};
