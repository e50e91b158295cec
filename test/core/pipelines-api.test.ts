import { describe, expect, it } from 'vitest';
import { type Pipeline, type PipelineRef, pipelineId } from '../../functions/core/pipeline.ts';
import {
  MAX_MANIFEST_ITEMS,
  MAX_MANIFEST_TOKENS,
  MAX_REPORTED_INVALID,
  parsePipelineManifests,
} from '../../functions/core/pipeline-manifest.ts';
import {
  handlePipelinesApiRequest,
  MAX_SYNC_BODY_BYTES,
  type PipelinesApiDependencies,
} from '../../functions/core/pipelines-api.ts';
import type { PipelinePutResult, PipelineRegistry } from '../../functions/core/ports.ts';
import { readFixture } from '../support/fixtures.ts';
import {
  BILLION_LAUGHS,
  COMPACT_NESTING_BOMB,
  documents,
  INVALID_YAML,
  NESTING_BOMB,
} from '../support/hostile-yaml.ts';

/**
 * `PUT /pipelines` through the shared request function with hostile bodies (issue 9 item 3):
 * every unreadable document is answered by itself, the readable ones are synced beside them.
 */
class MemoryRegistry implements PipelineRegistry {
  readonly stored = new Map<string, Pipeline>();
  async get(ref: PipelineRef): Promise<Pipeline | undefined> {
    return this.stored.get(pipelineId(ref));
  }
  async list(): Promise<Pipeline[]> {
    return [...this.stored.values()];
  }
  async put(pipeline: Pipeline): Promise<PipelinePutResult> {
    const created = !this.stored.has(pipelineId(pipeline));
    this.stored.set(pipelineId(pipeline), pipeline);
    return created ? 'created' : 'updated';
  }
  async delete(ref: PipelineRef): Promise<boolean> {
    return this.stored.delete(pipelineId(ref));
  }
}

const dependencies = (registry: MemoryRegistry): PipelinesApiDependencies => ({
  pipelines: registry,
  registry,
  state: { listDeployments: async () => [], listPromotions: async () => [] },
  logger: { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} },
});

const put = (registry: MemoryRegistry, body: string, query = '') =>
  handlePipelinesApiRequest(
    { method: 'PUT', path: '/pipelines', query, body: Buffer.from(body) },
    dependencies(registry),
  );

const podinfo = readFixture('pipelines/podinfo.yaml');
const search = readFixture('pipelines/search-rfc-draft.yaml');

describe('PUT /pipelines with hostile documents', () => {
  it('answers each unreadable document by itself and syncs the readable ones beside them', async () => {
    // Prepare
    const registry = new MemoryRegistry();
    await registry.put(parsePipelineManifests(search).pipelines[0] as Pipeline);
    const body = documents(
      NESTING_BOMB,
      podinfo,
      BILLION_LAUGHS,
      COMPACT_NESTING_BOMB,
      INVALID_YAML,
    );

    // Act
    const answer = await put(registry, body, 'prune=true');

    // Assess
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({
      counts: { created: 1, invalid: 4, deleted: 0 },
      created: ['flux-system/podinfo'],
      invalid: [
        {
          id: 'input document 1',
          errors: [expect.stringMatching(/^not parsed: it nests more than 64 levels deep/)],
        },
        { id: 'input document 3', errors: [expect.stringMatching(/alias bomb, not read$/)] },
        {
          id: 'input document 4',
          errors: [expect.stringMatching(/^not parsed: it nests more than 64 levels deep/)],
        },
        {
          id: 'input document 5',
          errors: [expect.stringMatching(/at line \d+, column/)],
        },
      ],
      // The unreadable documents could be any pipeline: nothing is pruned.
      prune: { requested: true, performed: false },
    });
    expect([...registry.stored.keys()].sort()).toEqual(['flux-system/podinfo', 'shopping/search']);
  });

  it('reports invalid YAML at its line in the whole body', async () => {
    // Prepare
    const body = documents(podinfo, INVALID_YAML);
    const line = podinfo.split('\n').length + 2;

    // Act
    const answer = await put(new MemoryRegistry(), body);

    // Assess
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({
      invalid: [
        { id: 'input document 2', errors: [expect.stringContaining(`at line ${line}, column`)] },
      ],
    });
  });

  it.each([
    ['a wide flow sequence', `[${'1,'.repeat(MAX_MANIFEST_TOKENS)}1]`],
    ['a List of empty items', `kind: List\nitems:\n${'- {}\n'.repeat(MAX_MANIFEST_TOKENS / 2)}`],
  ])('refuses %s past the token bound before parsing it', async (_name, body) => {
    // Prepare
    const registry = new MemoryRegistry();

    // Act
    const answer = await put(registry, documents(podinfo, body, search));

    // Assess
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({
      created: ['flux-system/podinfo'],
      invalid: [
        {
          id: 'input document 2',
          errors: [expect.stringContaining(`past ${MAX_MANIFEST_TOKENS} YAML tokens`)],
        },
        { id: 'input: 1 more document', errors: [expect.stringMatching(/^not read/)] },
      ],
    });
  });

  it('keeps the answer small however many invalid documents the body holds', async () => {
    // Prepare
    const body = documents(...Array.from({ length: MAX_MANIFEST_ITEMS + 5 }, () => 'a: 1'));
    const long = documents(`apiVersion: ${'x'.repeat(100_000)}`);

    // Act
    const many = await put(new MemoryRegistry(), body);
    const wide = await put(new MemoryRegistry(), long);

    // Assess
    expect(many.status).toBe(200);
    const invalid = many.body.invalid as { id: string }[];
    expect(invalid).toHaveLength(MAX_REPORTED_INVALID);
    expect(invalid.at(-1)?.id).toMatch(/^input: \d+ more invalid items$/);
    expect(JSON.stringify(many.body).length).toBeLessThan(100_000);
    expect(JSON.stringify(wide.body).length).toBeLessThan(10_000);
  });

  it('answers 413 to a body over the bound and 400 to one that cannot be read at all', async () => {
    // Prepare
    const registry = new MemoryRegistry();

    // Act
    const tooLarge = await put(registry, `# ${'x'.repeat(MAX_SYNC_BODY_BYTES)}`);
    const empty = await put(registry, '# nothing\n---\n');
    const notText = await handlePipelinesApiRequest(
      { method: 'PUT', path: '/pipelines', query: '', body: Buffer.from([0xff, 0xfe, 0x00]) },
      dependencies(registry),
    );

    // Assess
    expect(tooLarge.status).toBe(413);
    expect(empty.status).toBe(400);
    expect(notText.status).toBe(400);
  });
});
