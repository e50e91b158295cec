import { describe, expect, it } from 'vitest';
import { type Pipeline, promotionSettings } from '../../functions/core/pipeline.ts';
import {
  closestName,
  MAX_SOAK_MS,
  parsePipelineSettings,
  parseSoakDuration,
  parseTargetsGate,
  type SettingsEnvironment,
} from '../../functions/core/pipeline-settings.ts';

/** dev (1 target) → staging (2 targets) → prod (1 target), as in fixtures/pipelines/podinfo.yaml. */
const ENVIRONMENTS: readonly SettingsEnvironment[] = [
  { name: 'dev', targets: [{ namespace: 'podinfo-dev' }] },
  { name: 'staging', targets: [{ namespace: 'podinfo-qa' }, { namespace: 'podinfo-perf' }] },
  { name: 'prod', targets: [{ namespace: 'podinfo-prod' }] },
];

const at = (key: string): string => `metadata.annotations[${JSON.stringify(key)}]`;

describe('parsePipelineSettings', () => {
  it('reads every setting, with and without an environment suffix', () => {
    // Act
    const { settings, problems } = parsePipelineSettings(
      {
        'pipeline-promoter/gate': 'any',
        'pipeline-promoter/gate.staging': '1',
        'pipeline-promoter/gate.prod': 'all',
        'pipeline-promoter/soak.prod': '1h30m',
        'pipeline-promoter/window.prod': ' Mon-Fri 09:00-17:00 Europe/Berlin\n',
        'pipeline-promoter/auto-merge': 'false',
        'pipeline-promoter/auto-merge.staging': 'true',
        'kustomize.toolkit.fluxcd.io/reconcile': 'disabled',
      },
      ENVIRONMENTS,
    );

    // Assess
    expect(problems).toEqual([]);
    expect(settings).toEqual({
      all: { gate: { kind: 'any' }, autoMerge: false },
      into: {
        staging: { gate: { kind: 'count', count: 1 }, autoMerge: true },
        prod: {
          gate: { kind: 'all' },
          soakMs: 5_400_000,
          window: {
            days: [1, 2, 3, 4, 5],
            startMinute: 540,
            endMinute: 1020,
            timeZone: 'Europe/Berlin',
            text: 'Mon-Fri 09:00-17:00 Europe/Berlin',
          },
        },
      },
    });
  });

  it('has no settings when no annotation is ours', () => {
    expect(parsePipelineSettings(undefined, ENVIRONMENTS)).toEqual({ problems: [] });
    expect(parsePipelineSettings(null, ENVIRONMENTS)).toEqual({ problems: [] });
    expect(
      parsePipelineSettings({ 'example.com/owner': 'team-a', other: 'x' }, ENVIRONMENTS),
    ).toEqual({ problems: [] });
  });

  it.each([
    // gate
    [
      'pipeline-promoter/gate',
      'most',
      'expected all, any or a number of targets from 1, got "most"',
    ],
    ['pipeline-promoter/gate', '0', 'expected all, any or a number of targets from 1, got "0"'],
    ['pipeline-promoter/gate', '-1', 'expected all, any or a number of targets from 1, got "-1"'],
    ['pipeline-promoter/gate', '1.5', 'expected all, any or a number of targets from 1, got "1.5"'],
    [
      'pipeline-promoter/gate.prod',
      'ALL',
      'expected all, any or a number of targets from 1, got "ALL"',
    ],
    ['pipeline-promoter/gate', '', 'expected all, any or a number of targets from 1, got ""'],
    // soak
    [
      'pipeline-promoter/soak.prod',
      '30 minutes',
      'expected a duration such as 90s, 30m, 2h or 1h30m, got "30 minutes"',
    ],
    [
      'pipeline-promoter/soak.prod',
      '2d',
      'expected a duration such as 90s, 30m, 2h or 1h30m, got "2d"',
    ],
    [
      'pipeline-promoter/soak.prod',
      '30',
      'expected a duration such as 90s, 30m, 2h or 1h30m, got "30"',
    ],
    [
      'pipeline-promoter/soak.prod',
      '1.5h',
      'expected a duration such as 90s, 30m, 2h or 1h30m, got "1.5h"',
    ],
    [
      'pipeline-promoter/soak.prod',
      '30m1h',
      'expected a duration such as 90s, 30m, 2h or 1h30m, got "30m1h"',
    ],
    ['pipeline-promoter/soak', '', 'expected a duration such as 90s, 30m, 2h or 1h30m, got ""'],
    ['pipeline-promoter/soak.prod', '169h', 'expected at most 168h (7 days), got "169h"'],
    ['pipeline-promoter/soak.prod', '168h1s', 'expected at most 168h (7 days), got "168h1s"'],
    // window
    [
      'pipeline-promoter/window.prod',
      'Mon-Fri 09:00-17:00',
      'expected a time zone after the hours (IANA, e.g. Europe/Berlin or UTC): <days> <HH:MM>-<HH:MM> <time zone>, e.g. "Mon-Fri 09:00-17:00 Europe/Berlin", got "Mon-Fri 09:00-17:00"',
    ],
    [
      'pipeline-promoter/window.prod',
      'Mon-Fri 09:00-17:00 Europe/Berln',
      'unknown time zone "Europe/Berln": expected an IANA time zone such as Europe/Berlin or UTC',
    ],
    [
      'pipeline-promoter/window.prod',
      'Mnday 09:00-17:00 UTC',
      'unknown day "Mnday": expected Mon, Tue, Wed, Thu, Fri, Sat or Sun',
    ],
    [
      'pipeline-promoter/window',
      'Mon-Fri 09:00-25:00 UTC',
      'expected an end time from 00:00 to 24:00, got "25:00"',
    ],
    [
      'pipeline-promoter/window.prod',
      'Mon 09:00-09:00 UTC',
      'expected an end time other than the start (09:00): for whole days write 00:00-24:00',
    ],
    // auto-merge
    ['pipeline-promoter/auto-merge.prod', 'yes', 'expected true or false, got "yes"'],
    ['pipeline-promoter/auto-merge.prod', 'True', 'expected true or false, got "True"'],
    ['pipeline-promoter/auto-merge', '', 'expected true or false, got ""'],
  ])('refuses %s: %j, naming the annotation and what was expected', (key, value, message) => {
    // Act
    const parsed = parsePipelineSettings({ [key]: value }, ENVIRONMENTS);

    // Assess
    expect(parsed).toEqual({ problems: [`${at(key)}: ${message}`] });
  });

  it.each([
    [true, 'expected a string: annotation values are strings in Kubernetes, so quote it: "true"'],
    [2, 'expected a string: annotation values are strings in Kubernetes, so quote it: "2"'],
    [{ days: 'Mon' }, 'expected a string: annotation values are strings in Kubernetes'],
    [null, 'expected a string: annotation values are strings in Kubernetes'],
  ])('refuses the value %j, which Kubernetes would refuse too', (value, message) => {
    const key = 'pipeline-promoter/auto-merge.prod';
    expect(parsePipelineSettings({ [key]: value }, ENVIRONMENTS).problems).toEqual([
      `${at(key)}: ${message}`,
    ]);
  });

  it.each([
    [
      'pipeline-promoter/soaks.prod',
      'unknown setting; did you mean pipeline-promoter/soak.prod? (the settings are gate, soak, window and auto-merge, each with an optional .{environment} suffix)',
    ],
    [
      'pipeline-promoter/automerge',
      'unknown setting; did you mean pipeline-promoter/auto-merge? (the settings are gate, soak, window and auto-merge, each with an optional .{environment} suffix)',
    ],
    [
      'pipeline-promoter/freeze',
      'unknown setting: the settings are gate, soak, window and auto-merge, each with an optional .{environment} suffix',
    ],
    [
      'pipeline-promoter/',
      'unknown setting: the settings are gate, soak, window and auto-merge, each with an optional .{environment} suffix',
    ],
  ])('refuses the unknown setting %s, naming the known ones', (key, message) => {
    expect(parsePipelineSettings({ [key]: '30m' }, ENVIRONMENTS).problems).toEqual([
      `${at(key)}: ${message}`,
    ]);
  });

  it.each([
    [
      'pipeline-promoter/soak.prd',
      'no environment "prd" in this pipeline: its environments are dev, staging and prod; did you mean pipeline-promoter/soak.prod?',
    ],
    [
      'pipeline-promoter/soak.qa',
      'no environment "qa" in this pipeline: its environments are dev, staging and prod',
    ],
    [
      'pipeline-promoter/soak.dev',
      'dev is the first environment: nothing promotes into it (the suffix names the environment promoted into: staging and prod)',
    ],
    ['pipeline-promoter/soak.', 'expected an environment name after the "." (or no ".")'],
  ])('refuses the suffix of %s', (key, message) => {
    expect(parsePipelineSettings({ [key]: '30m' }, ENVIRONMENTS).problems).toEqual([
      `${at(key)}: ${message}`,
    ]);
  });

  it('refuses a gate above the targets of the environment the promotion comes from', () => {
    // Act: into prod counts staging's 2 targets; into staging, dev's 1.
    const intoProd = parsePipelineSettings({ 'pipeline-promoter/gate.prod': '3' }, ENVIRONMENTS);
    const intoStaging = parsePipelineSettings(
      { 'pipeline-promoter/gate.staging': '2' },
      ENVIRONMENTS,
    );
    const fits = parsePipelineSettings({ 'pipeline-promoter/gate.prod': '2' }, ENVIRONMENTS);

    // Assess
    expect(intoProd.problems).toEqual([
      `${at('pipeline-promoter/gate.prod')}: expected at most 2 (the gate counts the targets of the environment a promotion comes from: staging has 2 targets), got 3`,
    ]);
    expect(intoStaging.problems).toEqual([
      `${at('pipeline-promoter/gate.staging')}: expected at most 1 (the gate counts the targets of the environment a promotion comes from: dev has 1 target), got 2`,
    ]);
    expect(fits.settings?.into.prod?.gate).toEqual({ kind: 'count', count: 2 });
  });

  it('checks a gate without suffix against every environment it applies to', () => {
    // Act
    const everywhere = parsePipelineSettings({ 'pipeline-promoter/gate': '2' }, ENVIRONMENTS);
    const overridden = parsePipelineSettings(
      { 'pipeline-promoter/gate': '2', 'pipeline-promoter/gate.staging': 'all' },
      ENVIRONMENTS,
    );

    // Assess: dev → staging has one target to count; with its own gate, the 2 holds into prod only.
    expect(everywhere.problems).toEqual([
      `${at('pipeline-promoter/gate')}: expected at most 1 (the gate counts the targets of the environment a promotion comes from: dev has 1 target), got 2`,
    ]);
    expect(overridden.problems).toEqual([]);
    expect(overridden.settings?.all.gate).toEqual({ kind: 'count', count: 2 });
  });

  it('reports every problem at once', () => {
    // Act
    const { settings, problems } = parsePipelineSettings(
      {
        'pipeline-promoter/gate': 'most',
        'pipeline-promoter/soak.prd': '2d',
        'pipeline-promoter/windows.prod': 'Mon-Fri 09:00-17:00 UTC',
        'pipeline-promoter/auto-merge.prod': 'true',
      },
      ENVIRONMENTS,
    );

    // Assess
    expect(settings).toBeUndefined();
    expect(problems).toEqual([
      `${at('pipeline-promoter/gate')}: expected all, any or a number of targets from 1, got "most"`,
      `${at('pipeline-promoter/soak.prd')}: no environment "prd" in this pipeline: its environments are dev, staging and prod; did you mean pipeline-promoter/soak.prod?`,
      `${at('pipeline-promoter/soak.prd')}: expected a duration such as 90s, 30m, 2h or 1h30m, got "2d"`,
      expect.stringMatching(
        /^metadata\.annotations\["pipeline-promoter\/windows\.prod"\]: unknown setting; did you mean pipeline-promoter\/window\.prod\?/,
      ),
    ]);
  });

  it('checks only the values when the environments are not known', () => {
    // Act
    const { settings, problems } = parsePipelineSettings({
      'pipeline-promoter/soak.anywhere': '30m',
      'pipeline-promoter/gate.prod': '9',
      'pipeline-promoter/auto-merge.prod': 'maybe',
    });

    // Assess
    expect(settings).toBeUndefined();
    expect(problems).toEqual([
      `${at('pipeline-promoter/auto-merge.prod')}: expected true or false, got "maybe"`,
    ]);
  });

  it('merges into promotionSettings: the suffixed setting over the unsuffixed, then the defaults', () => {
    // Prepare
    const { settings } = parsePipelineSettings(
      {
        'pipeline-promoter/soak': '30m',
        'pipeline-promoter/soak.prod': '0s',
        'pipeline-promoter/gate.prod': 'any',
        'pipeline-promoter/auto-merge.staging': 'true',
      },
      ENVIRONMENTS,
    );
    const pipeline = { settings } as Pipeline;

    // Act
    const staging = promotionSettings(pipeline, 'staging');
    const prod = promotionSettings(pipeline, 'prod');

    // Assess
    expect(staging).toEqual({ gate: { kind: 'all' }, autoMerge: true, soakMs: 1_800_000 });
    expect(prod).toEqual({ gate: { kind: 'any' }, autoMerge: false, soakMs: 0 });
  });
});

describe('parseSoakDuration', () => {
  it.each([
    ['90s', 90_000],
    ['30m', 1_800_000],
    ['2h', 7_200_000],
    ['1h30m', 5_400_000],
    ['1h0m5s', 3_605_000],
    ['0s', 0],
    ['168h', MAX_SOAK_MS],
  ])('reads %s', (text, ms) => {
    expect(parseSoakDuration(text)).toBe(ms);
  });
});

describe('parseTargetsGate', () => {
  it.each([
    ['all', { kind: 'all' }],
    ['any', { kind: 'any' }],
    ['1', { kind: 'count', count: 1 }],
    ['12', { kind: 'count', count: 12 }],
  ])('reads %s', (text, gate) => {
    expect(parseTargetsGate(text)).toEqual(gate);
  });
});

describe('closestName', () => {
  it.each([
    ['enviroments', ['appRef', 'environments', 'promotion'], 'environments'],
    ['appref', ['appRef', 'environments'], 'appRef'],
    ['strategie', ['manual', 'strategy'], 'strategy'],
    ['baseBrnach', ['type', 'url', 'baseBranch'], 'baseBranch'],
    ['colour', ['gate', 'soak', 'window'], undefined],
    ['x', ['url'], undefined],
  ])('%s among %j: %s', (word, candidates, expected) => {
    expect(closestName(word, candidates)).toBe(expected);
  });

  it('suggests nothing for a word far longer than any name', () => {
    expect(closestName(`environments${'s'.repeat(100)}`, ['environments'])).toBeUndefined();
  });
});
