import { en } from 'zod/locales';
import * as z from 'zod/mini';

// zod/mini (the schemas on the webhook's path use it: a fifth of classic zod's bundle size)
// loads no messages of its own; English ones, as classic zod has.
z.config(en());

/** `spec.environments[1].targets[0].namespace` from a zod issue path. */
export const formatPath = (path: readonly PropertyKey[]): string =>
  path.reduce<string>((text, key) => {
    if (typeof key === 'number') return `${text}[${key}]`;
    const name = String(key);
    const segment = /^[A-Za-z_$][\w$-]*$/.test(name) ? name : JSON.stringify(name);
    return text === '' ? segment : `${text}.${segment}`;
  }, '');

/** One line per issue, each naming the field it is about. */
export const formatIssues = (
  issues: readonly z.core.$ZodIssue[],
  root: readonly PropertyKey[] = [],
): string[] =>
  issues.map((issue) => {
    const path = formatPath([...root, ...issue.path]);
    return path === '' ? issue.message : `${path}: ${issue.message}`;
  });
