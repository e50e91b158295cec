import { describe, expect, it } from 'vitest';
import {
  hasNoDocuments,
  measureYamlDocument,
  splitYamlDocuments,
} from '../../functions/core/yaml-documents.ts';
import { readFixture } from '../support/fixtures.ts';
import { COMPACT_NESTING_BOMB, NESTING_BOMB } from '../support/hostile-yaml.ts';

const depth = (text: string, limit = 64): number => measureYamlDocument(text, limit, 1e9).depth;

describe('splitYamlDocuments', () => {
  it('splits at --- and ..., keeps comments and directives with the document they precede', () => {
    // Prepare
    const text = '# about a\na: 1\n---\nb: 2\n...\n# about c\n%YAML 1.2\n---\nc: 3\n---\n';

    // Act
    const documents = splitYamlDocuments(text);

    // Assess
    expect(documents).toEqual([
      { text: '# about a\na: 1', firstLine: 0, hasContent: true },
      { text: '---\nb: 2\n...', firstLine: 2, hasContent: true },
      { text: '# about c\n%YAML 1.2\n---\nc: 3', firstLine: 5, hasContent: true },
      { text: '---\n', firstLine: 9, hasContent: false },
    ]);
  });

  it('tells an input with no document from one with content', () => {
    // Act, Assess
    expect(hasNoDocuments('')).toBe(true);
    expect(hasNoDocuments('  \n# only a comment\n---\n--- # another\n')).toBe(true);
    expect(hasNoDocuments('[]')).toBe(false);
    expect(hasNoDocuments('--- {kind: List, items: []}')).toBe(false);
    expect(hasNoDocuments(NESTING_BOMB)).toBe(false);
  });
});

describe('measureYamlDocument', () => {
  it('measures real manifests far below the limit', () => {
    // Prepare
    const manifests = ['podinfo.yaml', 'list-from-kubectl.yaml', 'search-rfc-draft.yaml'].map(
      (file) => readFixture(`pipelines/${file}`),
    );

    // Act
    const depths = manifests.map((text) => depth(text));

    // Assess
    for (const measured of depths) expect(measured).toBeLessThan(16);
  });

  it.each([
    ['flow brackets', NESTING_BOMB],
    ['compact block sequences', COMPACT_NESTING_BOMB],
    ['indentation', Array.from({ length: 100 }, (_, level) => `${' '.repeat(level)}k:`).join('\n')],
    ['JSON', `${'{"a":'.repeat(100)}1${'}'.repeat(100)}`],
  ])('stops past the limit on nesting by %s', (_name, text) => {
    // Act
    const measured = depth(text);

    // Assess
    expect(measured).toBe(65);
  });

  it('does not count brackets in quoted, plain and block scalars, or in comments', () => {
    // Prepare
    const brackets = '['.repeat(100);
    const text = [
      `double: "${brackets}"`,
      `single: '${brackets}'`,
      `plain: a${brackets}`,
      `# ${brackets}`,
      'block: |',
      `  ${brackets}`,
      `  - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - -`,
      'after: 1',
    ].join('\n');

    // Act
    const measured = depth(text);

    // Assess
    expect(measured).toBeLessThan(4);
  });

  it('counts what follows a plain scalar continued on the next line, as the parser reads it', () => {
    // Prepare: the quote starts no quoted scalar inside a plain one, so the brackets are structure.
    const text = `key: plain\n  'x\nother: ${'['.repeat(100)}`;

    // Act
    const measured = depth(text);

    // Assess
    expect(measured).toBe(65);
  });

  it('stops counting tokens past their limit', () => {
    // Prepare
    const text = `[${'1,'.repeat(10_000)}1]`;

    // Act
    const measured = measureYamlDocument(text, 64, 1_000);

    // Assess
    expect(measured.tokens).toBe(1_001);
    expect(measured.depth).toBeLessThan(3);
  });
});
