import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  FilePipelineStore,
  MAX_PIPELINE_FILE_BYTES,
} from '../../functions/adapters/file-pipeline-store.ts';
import type { LogPort } from '../../functions/core/logger.ts';
import { readFixture } from '../support/fixtures.ts';
import {
  BILLION_LAUGHS,
  COMPACT_NESTING_BOMB,
  documents,
  INVALID_YAML,
  NESTING_BOMB,
} from '../support/hostile-yaml.ts';

/**
 * `promoter serve --pipelines` with hostile and broken files (issue 9 item 3): a bad file or
 * document is logged and left out, the others load, and a file saved with a mistake keeps the
 * last valid definition of the pipelines it held.
 */
const folder = () => mkdtemp(join(tmpdir(), 'file-pipeline-store-'));

const recordingLogger = () => {
  const lines: { level: string; message: string; attributes: Record<string, unknown> }[] = [];
  const at =
    (level: string) =>
    (message: string, ...attributes: Record<string, unknown>[]) =>
      lines.push({ level, message, attributes: Object.assign({}, ...attributes) });
  const logger: LogPort = {
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
  };
  return { logger, lines };
};

const podinfo = readFixture('pipelines/podinfo.yaml');
const search = readFixture('pipelines/search-rfc-draft.yaml');
const ids = (store: FilePipelineStore) =>
  store
    .list()
    .map((pipeline) => `${pipeline.namespace}/${pipeline.name}`)
    .sort();

describe('FilePipelineStore with hostile files', () => {
  it('leaves out the nesting bombs and billion laughs, each reported by document, and loads the rest', async () => {
    // Prepare
    const directory = await folder();
    const bombs = join(directory, 'bombs.yaml');
    await writeFile(
      bombs,
      documents(NESTING_BOMB, BILLION_LAUGHS, podinfo, COMPACT_NESTING_BOMB, INVALID_YAML),
    );
    await writeFile(join(directory, 'search.yaml'), search);
    const { logger, lines } = recordingLogger();

    // Act
    const store = await FilePipelineStore.load(directory, logger);

    // Assess
    expect(ids(store)).toEqual(['flux-system/podinfo', 'shopping/search']);
    expect(store.invalid()).toEqual([
      { id: `${bombs} document 1`, errors: [expect.stringContaining('more than 64 levels deep')] },
      { id: `${bombs} document 2`, errors: [expect.stringContaining('an alias bomb')] },
      { id: `${bombs} document 4`, errors: [expect.stringContaining('more than 64 levels deep')] },
      { id: `${bombs} document 5`, errors: [expect.stringContaining('at line')] },
    ]);
    expect(lines.filter((line) => line.level === 'error')).toHaveLength(4);
  });

  it('keeps the last valid definition of a pipeline whose file is saved with a typo or broken YAML', async () => {
    // Prepare
    const directory = await folder();
    const file = join(directory, 'pipelines.yaml');
    await writeFile(file, documents(podinfo, search));
    const { logger, lines } = recordingLogger();
    const store = await FilePipelineStore.load(directory, logger);
    const before = await store.get({ namespace: 'flux-system', name: 'podinfo' });

    // Act: a typo that makes podinfo invalid, then a YAML error that names no pipeline.
    await writeFile(
      file,
      documents(podinfo.replace('kind: HelmRelease', 'knd: HelmRelease'), search),
    );
    await store.reload();
    const afterTypo = await store.get({ namespace: 'flux-system', name: 'podinfo' });
    const invalidAfterTypo = store.invalid().map((entry) => entry.id);
    await writeFile(file, `${NESTING_BOMB}\n---\n${podinfo.replace('name: dev', 'name: [dev')}`);
    await store.reload();
    const afterBreak = ids(store);

    // Assess
    expect(before).toBeDefined();
    expect(afterTypo).toEqual(before);
    expect(invalidAfterTypo).toEqual(['flux-system/podinfo']);
    expect(afterBreak).toEqual(['flux-system/podinfo', 'shopping/search']);
    expect(
      lines
        .filter((line) => line.level === 'warn')
        .map((line) => [line.attributes.pipeline, line.attributes.reason])
        .sort(),
    ).toEqual([
      ['flux-system/podinfo', `${file} document 1 names no pipeline`],
      ['flux-system/podinfo', 'it is invalid in the file'],
      ['shopping/search', `${file} document 1 names no pipeline`],
    ]);
  });

  it('keeps the pipelines of a file grown past the bound, and drops those of a removed file', async () => {
    // Prepare
    const directory = await folder();
    const big = join(directory, 'big.yaml');
    const other = join(directory, 'other.yaml');
    await writeFile(big, podinfo);
    await writeFile(other, search);
    const store = await FilePipelineStore.load(directory, recordingLogger().logger);

    // Act
    await writeFile(big, `${podinfo}\n# ${'x'.repeat(MAX_PIPELINE_FILE_BYTES)}\n`);
    await store.reload();
    const whileTooLarge = ids(store);
    const invalid = store.invalid();
    await rm(other);
    await store.reload();

    // Assess
    expect(whileTooLarge).toEqual(['flux-system/podinfo', 'shopping/search']);
    expect(invalid).toEqual([
      { id: big, errors: [expect.stringMatching(/bytes, over \d+: not read/)] },
    ]);
    expect(ids(store)).toEqual(['flux-system/podinfo']);
  });

  it('serves a pipeline moved to another file from there while the old file is broken', async () => {
    // Prepare
    const directory = await folder();
    const first = join(directory, 'a.yaml');
    await writeFile(first, podinfo);
    const store = await FilePipelineStore.load(directory, recordingLogger().logger);

    // Act
    await writeFile(first, INVALID_YAML);
    await writeFile(
      join(directory, 'b.yaml'),
      podinfo.replaceAll('baseBranch: main', 'baseBranch: release'),
    );
    await store.reload();

    // Assess
    expect(await store.get({ namespace: 'flux-system', name: 'podinfo' })).toMatchObject({
      promotion: { strategy: { baseBranch: 'release' } },
    });
  });

  it('while watching a single file saved the way editors save it, keeps the last good definition of a typo and takes the fix', async () => {
    // Prepare: serve --pipelines FILE; each save writes a new file and renames it over the old.
    const directory = await folder();
    const file = join(directory, 'podinfo.yaml');
    await writeFile(file, podinfo);
    const { logger, lines } = recordingLogger();
    const loads: (() => void)[] = [];
    const loaded = (): Promise<void> => new Promise((resolve) => loads.push(resolve));
    const watching: LogPort = {
      ...logger,
      info: (message, ...attributes) => {
        logger.info(message, ...attributes);
        if (message === 'pipelines loaded') for (const resolve of loads.splice(0)) resolve();
      },
    };
    const store = await FilePipelineStore.load(file, watching);
    const ref = { namespace: 'flux-system', name: 'podinfo' };
    const before = await store.get(ref);
    const save = async (text: string) => {
      const next = loaded();
      await writeFile(`${file}.tmp`, text);
      await rename(`${file}.tmp`, file);
      await next;
    };
    store.watch();

    try {
      // Act
      await save(podinfo.replace('environments:', 'enviroments:'));
      const afterTypo = await store.get(ref);
      await save(podinfo.replace('namespace: podinfo-dev', 'namespace: podinfo-dev-2'));
      const afterFix = await store.get(ref);

      // Assess
      expect(before).toBeDefined();
      expect(afterTypo).toEqual(before);
      expect(
        lines
          .filter((line) => line.level === 'warn')
          .map((line) => [line.message, line.attributes.pipeline, line.attributes.reason]),
      ).toEqual([
        [
          'keeping the last valid definition of a pipeline',
          'flux-system/podinfo',
          'it is invalid in the file',
        ],
      ]);
      expect(lines.find((line) => line.level === 'error')?.message).toContain('spec.environments');
      expect(afterFix?.environments[0]?.targets.map((target) => target.namespace)).toEqual([
        'podinfo-dev-2',
      ]);
    } finally {
      store.close();
    }
  });
});
