import type {
  Environment,
  PipelineSettings,
  PromotionSettings,
  PromotionWindow,
  TargetsGate,
} from './pipeline.ts';
import { parseWindow } from './promotion-window.ts';

/*
 * The settings Weave's schema lacks, as annotations on the Pipeline (DESIGN.md section 11):
 * `pipeline-promoter/{setting}` for every promotion, `pipeline-promoter/{setting}.{env}` for
 * promotions into `{env}`. A cluster that keeps Weave's structural CRD prunes unknown `spec`
 * fields but keeps annotations.
 */

export const SETTINGS_PREFIX = 'pipeline-promoter/';

export const SETTING_NAMES = ['gate', 'soak', 'window', 'auto-merge'] as const;
type SettingName = (typeof SETTING_NAMES)[number];

/** A soak longer than a week is a promotion nobody waits for. */
export const MAX_SOAK_MS = 7 * 86_400_000;

const MAX_SUGGESTED_LENGTH = 64;

const SOAK_FORMAT = 'a duration such as 90s, 30m, 2h or 1h30m';

/**
 * The closest of `candidates` to a misspelt `word` (case and one or two typos aside), for a
 * "did you mean" hint; undefined when none is close.
 *
 * @example
 * closestName('enviroments', ['appRef', 'environments', 'promotion']); // 'environments'
 * closestName('colour', ['gate', 'soak']); // undefined
 */
export const closestName = (word: string, candidates: readonly string[]): string | undefined => {
  // Field and setting names are short; a long word is no typo of one (and costs length squared).
  if (word.length > MAX_SUGGESTED_LENGTH) return undefined;
  let best: { name: string; distance: number } | undefined;
  for (const candidate of candidates) {
    const allowed = Math.max(1, Math.floor(Math.max(word.length, candidate.length) / 3));
    if (Math.abs(word.length - candidate.length) > allowed) continue;
    const distance = editDistance(word.toLowerCase(), candidate.toLowerCase());
    if (distance <= allowed && (best === undefined || distance < best.distance)) {
      best = { name: candidate, distance };
    }
  }
  return best?.name;
};

/** Optimal string alignment distance: insertions, deletions, substitutions, transpositions. */
const editDistance = (a: string, b: string): number => {
  const rows = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  const at = (i: number, j: number): number => rows[i]?.[j] ?? Number.POSITIVE_INFINITY;
  for (let i = 1; i <= a.length; i += 1) {
    const row = rows[i] as number[];
    for (let j = 1; j <= b.length; j += 1) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let distance = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        distance = Math.min(distance, at(i - 2, j - 2) + 1);
      }
      row[j] = distance;
    }
  }
  return at(a.length, b.length);
};

/**
 * A `pipeline-promoter/gate` value: `all`, `any`, or how many targets must report.
 *
 * @example
 * parseTargetsGate('all'); // { kind: 'all' }
 * parseTargetsGate('2'); // { kind: 'count', count: 2 }
 * parseTargetsGate('0'); // 'expected all, any or a number of targets from 1, got "0"'
 */
export const parseTargetsGate = (text: string): TargetsGate | string => {
  if (text === 'all' || text === 'any') return { kind: text };
  if (/^[1-9]\d{0,5}$/.test(text)) return { kind: 'count', count: Number(text) };
  return `expected all, any or a number of targets from 1, got ${JSON.stringify(text)}`;
};

/**
 * A `pipeline-promoter/soak` value: hours, minutes and seconds, in that order, each at most
 * once (Go's duration style, as Flux writes intervals), in milliseconds. `0s` is no soak, to
 * turn an unsuffixed soak off for one environment.
 *
 * @example
 * parseSoakDuration('90s'); // 90000
 * parseSoakDuration('1h30m'); // 5400000
 * parseSoakDuration('2d'); // 'expected a duration such as 90s, 30m, 2h or 1h30m, got "2d"'
 */
export const parseSoakDuration = (text: string): number | string => {
  const match = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(text);
  if (match === null || text === '') {
    return `expected ${SOAK_FORMAT}, got ${JSON.stringify(text)}`;
  }
  const [, hours = '0', minutes = '0', seconds = '0'] = match;
  const ms = ((Number(hours) * 60 + Number(minutes)) * 60 + Number(seconds)) * 1000;
  if (ms > MAX_SOAK_MS) {
    return `expected at most ${MAX_SOAK_MS / 3_600_000}h (7 days), got ${JSON.stringify(text)}`;
  }
  return ms;
};

const parseAutoMerge = (text: string): boolean | string =>
  text === 'true'
    ? true
    : text === 'false'
      ? false
      : `expected true or false, got ${JSON.stringify(text)}`;

type SettingValue =
  | { readonly name: 'gate'; readonly value: TargetsGate }
  | { readonly name: 'soak'; readonly value: number }
  | { readonly name: 'window'; readonly value: PromotionWindow }
  | { readonly name: 'auto-merge'; readonly value: boolean };

const parseValue = (name: SettingName, text: string): SettingValue | string => {
  switch (name) {
    case 'gate': {
      const value = parseTargetsGate(text);
      return typeof value === 'string' ? value : { name, value };
    }
    case 'soak': {
      const value = parseSoakDuration(text);
      return typeof value === 'string' ? value : { name, value };
    }
    case 'window': {
      const value = parseWindow(text);
      return typeof value === 'string' ? value : { name, value };
    }
    case 'auto-merge': {
      const value = parseAutoMerge(text);
      return typeof value === 'string' ? value : { name, value };
    }
  }
};

const isSettingName = (name: string): name is SettingName =>
  (SETTING_NAMES as readonly string[]).includes(name);

const list = (names: readonly string[]): string =>
  names.length <= 1
    ? (names[0] ?? '')
    : `${names.slice(0, -1).join(', ')} and ${names[names.length - 1]}`;

const plural = (count: number, word: string): string => `${count} ${word}${count === 1 ? '' : 's'}`;

/** The environment names and target counts the suffixes and gates are checked against. */
export type SettingsEnvironment = Pick<Environment, 'name' | 'targets'>;

export interface ParsedSettings {
  /** Absent when the pipeline has no `pipeline-promoter/` annotation (or a problem). */
  readonly settings?: PipelineSettings;
  /** One line per problem, each naming its annotation: `metadata.annotations["..."]: ...`. */
  readonly problems: readonly string[];
}

type Setting = SettingValue & {
  readonly key: string;
  /** The environment promoted into; absent for every promotion. */
  readonly into?: string;
};

/**
 * Reads the `pipeline-promoter/` annotations of a Pipeline into its settings; other annotations
 * are ignored. Every problem is reported, each naming the annotation and what was expected: an
 * unknown setting, a suffix that names no environment (or the first one, which nothing promotes
 * into), a bad value, a gate above the targets of the environment the promotion comes from.
 * Without `environments` (when they are invalid themselves) only the values are checked.
 *
 * @example
 * parsePipelineSettings(
 *   { 'pipeline-promoter/gate': 'all', 'pipeline-promoter/soak.prod': '30m' },
 *   pipeline.environments, // dev, staging, prod
 * );
 * // { settings: { all: { gate: { kind: 'all' } }, into: { prod: { soakMs: 1800000 } } },
 * //   problems: [] }
 */
export const parsePipelineSettings = (
  annotations: Readonly<Record<string, unknown>> | null | undefined,
  environments?: readonly SettingsEnvironment[],
): ParsedSettings => {
  const problems: string[] = [];
  const settings: Setting[] = [];
  const names = environments?.map((environment) => environment.name);
  for (const [key, raw] of Object.entries(annotations ?? {})) {
    if (!key.startsWith(SETTINGS_PREFIX)) continue;
    const problem = (message: string): void => {
      problems.push(`metadata.annotations[${JSON.stringify(key)}]: ${message}`);
    };
    const rest = key.slice(SETTINGS_PREFIX.length);
    const dot = rest.indexOf('.');
    const name = dot < 0 ? rest : rest.slice(0, dot);
    const into = dot < 0 ? undefined : rest.slice(dot + 1);
    if (!isSettingName(name)) {
      const suggestion = closestName(name, SETTING_NAMES);
      const known = `the settings are ${list(SETTING_NAMES)}, each with an optional .{environment} suffix`;
      problem(
        suggestion === undefined
          ? `unknown setting: ${known}`
          : `unknown setting; did you mean ${SETTINGS_PREFIX}${suggestion}${into === undefined ? '' : `.${into}`}? (${known})`,
      );
      continue;
    }
    let suffixValid = true;
    if (into === '') {
      problem(`expected an environment name after the "." (or no ".")`);
      suffixValid = false;
    } else if (into !== undefined && names !== undefined) {
      const index = names.indexOf(into);
      if (index < 0) {
        const suggestion = closestName(into, names);
        problem(
          `no environment ${JSON.stringify(into)} in this pipeline: its environments are ${list(names)}` +
            (suggestion === undefined
              ? ''
              : `; did you mean ${SETTINGS_PREFIX}${name}.${suggestion}?`),
        );
        suffixValid = false;
      } else if (index === 0) {
        problem(
          `${into} is the first environment: nothing promotes into it (the suffix names the environment promoted into: ${list(names.slice(1))})`,
        );
        suffixValid = false;
      }
    }
    if (typeof raw !== 'string') {
      problem(
        typeof raw === 'number' || typeof raw === 'boolean'
          ? `expected a string: annotation values are strings in Kubernetes, so quote it: "${raw}"`
          : 'expected a string: annotation values are strings in Kubernetes',
      );
      continue;
    }
    const parsed = parseValue(name, raw.trim());
    if (typeof parsed === 'string') {
      problem(parsed);
      continue;
    }
    if (suffixValid) settings.push({ ...parsed, key, ...(into === undefined ? {} : { into }) });
  }
  if (environments !== undefined) problems.push(...gateProblems(settings, environments));
  if (settings.length === 0 || problems.length > 0) return { problems };
  return { settings: collect(settings), problems };
};

/** A gate counts targets of the environment before the one promoted into: it cannot ask for more. */
const gateProblems = (
  settings: readonly Setting[],
  environments: readonly SettingsEnvironment[],
): string[] => {
  const gates = settings.filter((setting) => setting.name === 'gate');
  const suffixed = new Set(gates.map((setting) => setting.into));
  const problems: string[] = [];
  for (const setting of gates) {
    const gate = setting.value;
    if (gate.kind !== 'count') continue;
    // Unsuffixed, the gate holds for every promotion whose environment has no gate of its own.
    const sources = environments.filter((_environment, index) => {
      const next = environments[index + 1];
      if (next === undefined) return false;
      return setting.into === undefined ? !suffixed.has(next.name) : next.name === setting.into;
    });
    const short = sources.filter((source) => source.targets.length < gate.count);
    if (short.length === 0) continue;
    const fewest = Math.min(...short.map((source) => source.targets.length));
    const counted = list(
      short.map((source) => `${source.name} has ${plural(source.targets.length, 'target')}`),
    );
    problems.push(
      `metadata.annotations[${JSON.stringify(setting.key)}]: expected at most ${fewest} ` +
        `(the gate counts the targets of the environment a promotion comes from: ${counted}), got ${gate.count}`,
    );
  }
  return problems;
};

type MutableSettings = { -readonly [K in keyof PromotionSettings]?: PromotionSettings[K] };

const apply = (target: MutableSettings, setting: Setting): void => {
  switch (setting.name) {
    case 'gate':
      target.gate = setting.value;
      break;
    case 'soak':
      target.soakMs = setting.value;
      break;
    case 'window':
      target.window = setting.value;
      break;
    case 'auto-merge':
      target.autoMerge = setting.value;
      break;
  }
};

const collect = (settings: readonly Setting[]): PipelineSettings => {
  const all: MutableSettings = {};
  const into = new Map<string, MutableSettings>();
  for (const setting of settings) {
    if (setting.into === undefined) {
      apply(all, setting);
      continue;
    }
    const target = into.get(setting.into) ?? {};
    into.set(setting.into, target);
    apply(target, setting);
  }
  return { all, into: Object.fromEntries(into) };
};
