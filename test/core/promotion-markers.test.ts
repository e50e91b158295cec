import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { eventRevision, fluxEventSchema } from '../../functions/core/flux-event.ts';
import {
  editMarkers,
  isPromotableFile,
  markerFor,
  needle,
  revisionPart,
} from '../../functions/core/promotion-markers.ts';
import { FIXTURES, readFixture } from '../support/fixtures.ts';

const prod = { namespace: 'flux-system', name: 'podinfo', environment: 'prod' };
const marker = '# {"$promotion": "flux-system:podinfo:prod"}';

const listFiles = (root: string): string[] =>
  readdirSync(root, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => relative(root, join(entry.parentPath, entry.name)))
    .sort();

describe('markerFor, needle and isPromotableFile', () => {
  it('names a pipeline environment as NS:NAME:ENV and pre-filters on $promotion', () => {
    expect(markerFor('flux-system', 'podinfo', 'prod')).toBe('flux-system:podinfo:prod');
    expect(needle).toBe('$promotion');
  });

  it('honours *.yaml and *.yml files only', () => {
    expect(isPromotableFile('clusters/prod/podinfo/release.yaml')).toBe(true);
    expect(isPromotableFile('vars.yml')).toBe(true);
    expect(isPromotableFile('docs/promotion.md')).toBe(false);
    expect(isPromotableFile('clusters/yaml')).toBe(false);
    expect(isPromotableFile('release.yaml.bak')).toBe(false);
  });
});

describe('editMarkers on the fleet-repo fixture', () => {
  const before = join(FIXTURES, 'fleet-repo/before');
  const after = join(FIXTURES, 'fleet-repo/after');

  it('turns every file of before/ into exactly the file of after/', () => {
    // Prepare
    const files = listFiles(before);
    expect(files).toEqual(listFiles(after));
    const counts: Record<string, number> = {};

    // Act
    for (const path of files) {
      const input = readFileSync(join(before, path), 'utf8');
      const output = isPromotableFile(path) ? editMarkers(input, prod, '6.5.0') : undefined;
      counts[path] = output?.markers ?? 0;

      // Assess (byte for byte)
      expect(Buffer.from(output?.content ?? input, 'utf8')).toEqual(
        readFileSync(join(after, path)),
      );
    }
    expect(counts).toEqual({
      'clusters/dev/podinfo/release.yaml': 0,
      'clusters/prod/podinfo/release.yaml': 1,
      'clusters/prod/podinfo/vars.yml': 1,
      'clusters/prod/search/release.yaml': 0,
      'clusters/staging/podinfo/release.yaml': 0,
      'docs/promotion.md': 0,
    });
  });

  it('leaves the Markdown file unchanged even when handed to it', () => {
    // Prepare
    const text = readFileSync(join(before, 'docs/promotion.md'), 'utf8');

    // Act
    const edit = editMarkers(text, prod, '6.5.0');

    // Assess
    expect(edit).toEqual({ markers: 0, content: text });
  });

  it('counts the markers of after/ but changes nothing: already at the revision', () => {
    // Prepare
    const text = readFileSync(join(after, 'clusters/prod/podinfo/vars.yml'), 'utf8');

    // Act
    const edit = editMarkers(text, prod, '6.5.0');

    // Assess
    expect(edit.markers).toBe(1);
    expect(edit.content).toBe(text);
  });
});

describe('editMarkers', () => {
  const edit = (text: string, revision = '6.5.0') => editMarkers(text, prod, revision);

  it('keeps plain, single-quoted and double-quoted styles', () => {
    // Prepare
    const text = [
      `a: 6.4.0 ${marker}`,
      `b: '6.4.0' ${marker}`,
      `c: "6.4.0" ${marker}`,
      `d: "6.4.0"`,
      '',
    ].join('\n');

    // Act
    const result = edit(text);

    // Assess
    expect(result.markers).toBe(3);
    expect(result.content).toBe(
      [`a: 6.5.0 ${marker}`, `b: '6.5.0' ${marker}`, `c: "6.5.0" ${marker}`, `d: "6.4.0"`, ''].join(
        '\n',
      ),
    );
  });

  it('keeps CRLF line endings, indentation, comment spacing and a missing final newline', () => {
    // Prepare
    const text = `spec:\r\n  chart:\r\n    version:   6.4.0\t  #{"$promotion" : "flux-system:podinfo:prod" }\r\n    other: 1\r\n  x: 2`;

    // Act
    const result = edit(text);

    // Assess
    expect(result.markers).toBe(1);
    expect(result.content).toBe(
      `spec:\r\n  chart:\r\n    version:   6.5.0\t  #{"$promotion" : "flux-system:podinfo:prod" }\r\n    other: 1\r\n  x: 2`,
    );
  });

  it('edits list items, nested list items and keys inside list items', () => {
    // Prepare
    const text = [
      'versions:',
      `  - 6.4.0 ${marker}`,
      `  - "6.4.0" ${marker}`,
      `  - - '6.4.0' ${marker}`,
      `  - name: podinfo`,
      `    version: v6.4.0 ${marker}`,
      `  - tag: x ${marker}`,
      '',
    ].join('\n');

    // Act
    const result = edit(text, 'v6.5.0');

    // Assess
    expect(result.markers).toBe(5);
    expect(result.content).toBe(
      [
        'versions:',
        `  - v6.5.0 ${marker}`,
        `  - "v6.5.0" ${marker}`,
        `  - - 'v6.5.0' ${marker}`,
        `  - name: podinfo`,
        `    version: v6.5.0 ${marker}`,
        `  - tag: v6.5.0 ${marker}`,
        '',
      ].join('\n'),
    );
  });

  it('keeps tags, anchors and quoted keys, and fills an empty value', () => {
    // Prepare
    const text = [
      `version: !!str 6.4.0 ${marker}`,
      `anchored: &v 6.4.0 ${marker}`,
      `"quoted key": 6.4.0 ${marker}`,
      `empty: ${marker}`,
      '',
    ].join('\n');

    // Act
    const result = edit(text);

    // Assess
    expect(result.markers).toBe(4);
    expect(result.content).toBe(
      [
        `version: !!str 6.5.0 ${marker}`,
        `anchored: &v 6.5.0 ${marker}`,
        `"quoted key": 6.5.0 ${marker}`,
        `empty: 6.5.0 ${marker}`,
        '',
      ].join('\n'),
    );
  });

  it('leaves other pipelines, other environments and lookalike comments alone', () => {
    // Prepare
    const text = [
      'a: 1.0.0 # {"$promotion": "flux-system:podinfo:staging"}',
      'b: 1.0.0 # {"$promotion": "flux-system:ui:prod"}',
      'c: 1.0.0 # {"$promotion": "other:podinfo:prod"}',
      'd: 1.0.0 # {"$promotion": "flux-system:podinfo:prod"} and more',
      'e: 1.0.0 # $promotion flux-system:podinfo:prod',
      'f: 1.0.0 # {"$imagepolicy": "flux-system:podinfo:prod"}',
      `# g: 1.0.0 ${marker}`,
      `h: "1.0.0 ${marker}"`,
      '',
    ].join('\n');

    // Act
    const result = edit(text);

    // Assess
    expect(result).toEqual({ markers: 0, content: text });
  });

  it('returns the same text and no markers when there is no marker', () => {
    const text = 'apiVersion: v1\nkind: ConfigMap\n';
    expect(edit(text)).toEqual({ markers: 0, content: text });
  });

  it('understands JSON escapes in the marker comment', () => {
    // Prepare
    const text = 'v: 1.0.0 # {"$promotion": "flux-system\\u003apodinfo:prod"}\n';

    // Act
    const result = edit(text);

    // Assess
    expect(result.content).toBe('v: 6.5.0 # {"$promotion": "flux-system\\u003apodinfo:prod"}\n');
  });

  it('does not touch text inside block scalars', () => {
    // Prepare
    const text = [
      'data:',
      '  values.yaml: |',
      `    version: 6.4.0 ${marker}`,
      '',
      `    other: 6.4.0 ${marker}`,
      `  version: 6.4.0 ${marker}`,
      '',
    ].join('\n');

    // Act
    const result = edit(text);

    // Assess
    expect(result.markers).toBe(1);
    expect(result.content).toBe(text.replace(`\n  version: 6.4.0`, `\n  version: 6.5.0`));
  });

  it('quotes a revision that would not read back as a plain string', () => {
    // Prepare
    const line = (value: string) => `v: ${value} ${marker}\n`;

    // Act and Assess
    expect(edit(line('6.4.0'), '6.5').content).toBe(line('"6.5"'));
    expect(edit(line('6.4.0'), 'yes').content).toBe(line('"yes"'));
    expect(edit(line('6.4.0'), '2024-01-02').content).toBe(line('"2024-01-02"'));
    expect(edit(line('6.4.0'), 'a: b').content).toBe(line('"a: b"'));
    expect(edit(line('6.4.0'), 'a #b').content).toBe(line('"a #b"'));
    expect(edit(line('6.4.0'), '@sha256').content).toBe(line('"@sha256"'));
    expect(edit(line('6.4.0'), ' padded').content).toBe(line('" padded"'));
    expect(edit(line('6.4.0'), '1.0.0+build.1#x').content).toBe(line('1.0.0+build.1#x'));
    expect(edit(line('6.4.0'), 'sha256:abc').content).toBe(line('sha256:abc'));
    // A number stays a number when it was one.
    expect(edit(line('3'), '4').content).toBe(line('4'));
    expect(edit(`v: ${marker}\n`, '6.5').content).toBe(`v: "6.5" ${marker}\n`);
  });

  it('escapes a revision with quotes, backslashes and control characters', () => {
    // Prepare
    const text = [`a: "x" ${marker}`, `b: 'x' ${marker}`, `c: x ${marker}`, ''].join('\n');

    // Act
    const quotes = edit(text, `it's "6.5" \\o/`);
    const control = edit(text, 'v1\nv2');

    // Assess
    expect(quotes.content).toBe(
      [
        `a: "it's \\"6.5\\" \\\\o/" ${marker}`,
        `b: 'it''s "6.5" \\o/' ${marker}`,
        `c: it's "6.5" \\o/ ${marker}`,
        '',
      ].join('\n'),
    );
    expect(control.content).toBe(
      [`a: "v1\\nv2" ${marker}`, `b: "v1\\nv2" ${marker}`, `c: "v1\\nv2" ${marker}`, ''].join('\n'),
    );
  });

  it('keeps a UTF-8 byte order mark and non-ASCII text', () => {
    // Prepare
    const text = `\ufeff# café ☕\nversion: 6.4.0 ${marker}\n`;

    // Act
    const result = edit(text);

    // Assess
    expect(result.content).toBe(`\ufeff# café ☕\nversion: 6.5.0 ${marker}\n`);
  });
});

describe('editMarkers, Flux source revisions (DESIGN.md 7.12)', () => {
  const apps = { namespace: 'flux-system', name: 'apps', environment: 'prod' };
  const suffixed = (suffix: string) =>
    `# {"$promotion": "flux-system:apps:prod${suffix === '' ? '' : `:${suffix}`}"}`;
  /** The revision of the real Kustomization event, as the webhook takes it. */
  const kustomizationRevision = (): string => {
    const event = fluxEventSchema.parse(
      JSON.parse(readFixture('flux-events/kustomization-reconciliation-succeeded.json')),
    );
    const revision = eventRevision(event);
    if (revision === undefined) throw new Error('the fixture has no revision');
    return revision;
  };
  const COMMIT = '6b3d5c0e9f2a4b1c8d7e6f5a4b3c2d1e0f9a8b7c';
  const OCI_DIGEST = `sha256:${'9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08'}`;
  const manifest = [
    'apiVersion: source.toolkit.fluxcd.io/v1',
    'kind: GitRepository',
    'spec:',
    '  ref:',
    `    branch: develop ${suffixed('ref')}`,
    `    commit: 0000000 ${suffixed('hash')}`,
    `  digest: "sha1:0000000" ${suffixed('digest')}`,
    `  revision: 'develop@sha1:0000000' ${suffixed('')}`,
    '',
  ].join('\n');

  it('writes each part of a Kustomization event revision where its suffix asks', () => {
    // Prepare
    const revision = kustomizationRevision();
    expect(revision).toBe(`main@sha1:${COMMIT}`);

    // Act
    const result = editMarkers(manifest, apps, revision);

    // Assess
    expect(result.markers).toBe(4);
    expect(result.content).toBe(
      [
        'apiVersion: source.toolkit.fluxcd.io/v1',
        'kind: GitRepository',
        'spec:',
        '  ref:',
        `    branch: main ${suffixed('ref')}`,
        `    commit: ${COMMIT} ${suffixed('hash')}`,
        `  digest: "sha1:${COMMIT}" ${suffixed('digest')}`,
        `  revision: 'main@sha1:${COMMIT}' ${suffixed('')}`,
        '',
      ].join('\n'),
    );
  });

  it('writes the tag and the digest of an OCI artifact revision', () => {
    // Prepare: an OCIRepository-backed Kustomization reports <tag>@sha256:<digest>.
    const event = readFixture('flux-events/kustomization-reconciliation-succeeded.json').replace(
      `main@sha1:${COMMIT}`,
      `v1.2.3@${OCI_DIGEST}`,
    );
    const revision = eventRevision(fluxEventSchema.parse(JSON.parse(event)));
    const text = [
      `tag: v1.2.2 ${suffixed('ref')}`,
      `digest: sha256:0 ${suffixed('digest')}`,
      `hash: "0" ${suffixed('hash')}`,
      '',
    ].join('\n');

    // Act
    const result = editMarkers(text, apps, revision ?? '');

    // Assess
    expect(result.content).toBe(
      [
        `tag: v1.2.3 ${suffixed('ref')}`,
        `digest: ${OCI_DIGEST} ${suffixed('digest')}`,
        `hash: "${OCI_DIGEST.slice('sha256:'.length)}" ${suffixed('hash')}`,
        '',
      ].join('\n'),
    );
  });

  it('gives a revision without @ whole to every suffix', () => {
    // Prepare
    const text = ['a: 6.4.0', 'b: 6.4.0', 'c: 6.4.0', 'd: 6.4.0', '']
      .map((line, index) =>
        line === '' ? '' : `${line} ${suffixed(['', 'ref', 'digest', 'hash'][index] ?? '')}`,
      )
      .join('\n');

    // Act
    const result = editMarkers(text, apps, '6.5.0');

    // Assess
    expect(result.markers).toBe(4);
    expect(result.content).toBe(text.replaceAll('6.4.0', '6.5.0'));
  });

  it("leaves a marker with another suffix alone: it is not this pipeline environment's", () => {
    // Prepare
    const text = [
      `a: x ${suffixed('tag')}`,
      `b: x ${suffixed('')}`.replace('prod', 'prod:'),
      `c: x ${suffixed('ref:hash')}`,
      `d: x ${suffixed('Ref')}`,
      'e: x # {"$promotion": "flux-system:apps:production:ref"}',
      '',
    ].join('\n');

    // Act
    const result = editMarkers(text, apps, `main@sha1:${COMMIT}`);

    // Assess
    expect(result).toEqual({ markers: 0, content: text });
  });

  it('finds suffixed markers through the pre-filter and the JSON escapes', () => {
    // Prepare: what the git side checks before handing a file over, then an escaped marker.
    const escaped = 'ref: x # {"$promotion": "flux-system:apps:prod\\u003aref"}\n';

    // Act
    const result = editMarkers(escaped, apps, `main@sha1:${COMMIT}`);

    // Assess
    expect(manifest.includes(needle)).toBe(true);
    expect(result.content).toBe('ref: main # {"$promotion": "flux-system:apps:prod\\u003aref"}\n');
  });

  it('counts a suffixed marker already at its part as up to date', () => {
    // Prepare
    const text = `branch: main ${suffixed('ref')}\n`;

    // Act
    const result = editMarkers(text, apps, `main@sha1:${COMMIT}`);

    // Assess
    expect(result).toEqual({ markers: 1, content: text });
  });
});

describe('revisionPart', () => {
  it.each([
    ['main@sha1:abc', 'ref', 'main'],
    ['main@sha1:abc', 'digest', 'sha1:abc'],
    ['main@sha1:abc', 'hash', 'abc'],
    ['main@sha1:abc', 'whole', 'main@sha1:abc'],
    ['feature@x@sha1:abc', 'ref', 'feature@x'],
    ['refs/pull/7/head@sha1:abc', 'ref', 'refs/pull/7/head'],
    ['sha256:abc', 'ref', 'sha256:abc'],
    ['sha256:abc', 'hash', 'sha256:abc'],
    ['6.5.0', 'digest', '6.5.0'],
  ] as const)('%s by %s is %s', (revision, part, expected) => {
    expect(revisionPart(revision, part)).toBe(expected);
  });
});

describe('editMarkers, property', () => {
  it('writes any revision so that YAML 1.1 and 1.2 read it back as that string', () => {
    // Prepare
    const styles = fc.constantFrom('6.4.0', "'6.4.0'", '"6.4.0"', '');
    const revisions = fc.oneof(
      fc.string({ unit: 'grapheme', maxLength: 20 }),
      fc.constantFrom('6.5', 'yes', 'null', '~', '0x1F', '1e3', '- x', '? x', ': x', '#x', '&a'),
    );

    fc.assert(
      fc.property(styles, revisions, (original, revision) => {
        const text = `spec:\n  v: ${original} # {"$promotion": "flux-system:podinfo:prod"}\n`;

        // Act
        const result = editMarkers(
          text,
          { namespace: 'flux-system', name: 'podinfo', environment: 'prod' },
          revision,
        );

        // Assess
        expect(result.markers).toBe(1);
        for (const version of ['1.1', '1.2'] as const) {
          expect(parse(result.content, { version })).toEqual({ spec: { v: revision } });
        }
      }),
      { numRuns: 300 },
    );
  });
});
