/*
 * The naming rules a pipeline's names must follow, as Kubernetes and git apply them, so that a
 * name that reaches a branch, a marker, a secret key or a commit message cannot break out of
 * it. Each check answers what was expected (to follow a field path in a message), or undefined.
 */

export const DNS1123_LABEL_MAX = 63;
export const DNS1123_SUBDOMAIN_MAX = 253;

const LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

const shown = (value: string): string => JSON.stringify(value);

/**
 * A Kubernetes DNS-1123 label (namespaces, environment names): at most 63 lower-case letters,
 * digits or `-`, starting and ending with a letter or digit.
 *
 * @example
 * dns1123LabelProblem('podinfo-dev'); // undefined
 * dns1123LabelProblem('Prod'); // 'expected a DNS-1123 label (...), got "Prod"'
 */
export const dns1123LabelProblem = (value: string): string | undefined =>
  value.length <= DNS1123_LABEL_MAX && LABEL.test(value)
    ? undefined
    : `expected a DNS-1123 label (at most ${DNS1123_LABEL_MAX} lower-case letters, digits or "-", starting and ending with a letter or digit), got ${shown(value)}`;

/**
 * A Kubernetes DNS-1123 subdomain (object names: pipelines, secrets): at most 253 characters,
 * dot-separated DNS-1123 labels.
 *
 * @example
 * dns1123SubdomainProblem('promotion-credentials'); // undefined
 * dns1123SubdomainProblem('my_secret'); // 'expected a DNS-1123 subdomain (...), got "my_secret"'
 */
export const dns1123SubdomainProblem = (value: string): string | undefined =>
  value.length <= DNS1123_SUBDOMAIN_MAX && value.split('.').every((part) => LABEL.test(part))
    ? undefined
    : `expected a DNS-1123 subdomain (at most ${DNS1123_SUBDOMAIN_MAX} characters: lower-case letters, digits, "-" and ".", each dot-separated part starting and ending with a letter or digit), got ${shown(value)}`;

// git check-ref-format: no control characters, space, ~ ^ : ? * [ or \ anywhere.
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it refuses
const REF_FORBIDDEN = /[\u0000-\u0020\u007f~^:?*[\\]/;

/**
 * A branch name git accepts (`git check-ref-format --branch`): no control characters, space,
 * `~ ^ : ? * [ \`, `..` or `@{`; not `@` or `HEAD`; not starting with `-`; no empty component
 * (leading, trailing or double `/`); no component starting with `.` or ending with `.lock`; not
 * ending with `.`.
 *
 * @example
 * branchNameProblem('release/1.x'); // undefined
 * branchNameProblem('main..prod'); // 'expected a git branch name: no "..", got "main..prod"'
 */
export const branchNameProblem = (value: string): string | undefined => {
  const problem = branchRule(value);
  return problem === undefined
    ? undefined
    : `expected a git branch name: ${problem}, got ${shown(value)}`;
};

const branchRule = (value: string): string | undefined => {
  if (value === '') return 'not empty';
  const forbidden = REF_FORBIDDEN.exec(value);
  if (forbidden !== null) {
    const character = forbidden[0];
    return character.charCodeAt(0) < 0x21 || character === '\u007f'
      ? 'no space or control character'
      : `no ${shown(character)}`;
  }
  if (value.includes('..')) return 'no ".."';
  if (value.includes('@{')) return 'no "@{"';
  if (value === '@' || value === 'HEAD') return `not ${shown(value)}`;
  if (value.startsWith('-')) return 'not starting with "-"';
  if (value.endsWith('.')) return 'not ending with "."';
  const components = value.split('/');
  if (components.some((component) => component === '')) {
    return 'no leading, trailing or double "/"';
  }
  if (components.some((component) => component.startsWith('.'))) {
    return 'no part starting with "."';
  }
  if (components.some((component) => component.endsWith('.lock'))) {
    return 'no part ending with ".lock"';
  }
  return undefined;
};

// C0 and C1 control characters, DEL, and the Unicode line and paragraph separators.
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it finds
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

/**
 * True when the text holds a newline or another control character: such a value must not reach
 * a commit message, a PR title or a log line.
 *
 * @example
 * hasControlCharacter('6.5.0'); // false
 * hasControlCharacter('6.5.0\nSigned-off-by: x'); // true
 */
export const hasControlCharacter = (value: string): boolean => CONTROL.test(value);
