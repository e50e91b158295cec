import { fieldsOf } from './http.ts';
import type { MergeMethod } from './types.ts';

/**
 * The one GraphQL operation the stand-in serves, `enablePullRequestAutoMerge`, read from the
 * document without a GraphQL parser: the mutation's input is either a variable (`input: $input`)
 * or an object literal whose values are variables, strings or enum values. Answers follow
 * GitHub's GraphQL API: always 200, with `errors` (each with `type`, `path`, `locations` and
 * `message`) next to `data` when the mutation fails.
 */

export const ENABLE_AUTO_MERGE = 'enablePullRequestAutoMerge';

export type GraphQLErrorType = 'UNPROCESSABLE' | 'NOT_FOUND' | 'FORBIDDEN' | 'INVALID';

export interface GraphQLError {
  readonly type?: GraphQLErrorType;
  readonly path?: readonly string[];
  readonly locations?: readonly { readonly line: number; readonly column: number }[];
  readonly message: string;
}

export interface EnableAutoMergeRequest {
  /** The response key: the field's alias, else its name. */
  readonly key: string;
  readonly location: { readonly line: number; readonly column: number };
  readonly pullRequestId: string;
  readonly mergeMethod: MergeMethod;
  /** GitHub refuses the mutation when the PR's head is another commit. */
  readonly expectedHeadOid?: string;
}

export type GraphQLRequest =
  | { readonly kind: 'enable-auto-merge'; readonly request: EnableAutoMergeRequest }
  | { readonly kind: 'invalid'; readonly errors: readonly GraphQLError[] };

const MERGE_METHODS: Readonly<Record<string, MergeMethod>> = {
  MERGE: 'merge',
  SQUASH: 'squash',
  REBASE: 'rebase',
};

const FIELD = new RegExp(
  `(?:([A-Za-z_]\\w*)\\s*:\\s*)?${ENABLE_AUTO_MERGE}\\s*\\(\\s*input\\s*:\\s*(\\$\\w+|\\{[^}]*\\})\\s*\\)`,
);
const LITERAL_FIELD = /([A-Za-z_]\w*)\s*:\s*(\$\w+|"(?:[^"\\]|\\.)*"|[A-Za-z_]\w*)/g;

const locationOf = (query: string, index: number) => {
  const before = query.slice(0, index).split('\n');
  return { line: before.length, column: (before.at(-1)?.length ?? 0) + 1 };
};

const invalid = (message: string): GraphQLRequest => ({
  kind: 'invalid',
  errors: [{ message }],
});

/** The mutation's input as an object, with variables substituted. */
const inputOf = (
  written: string,
  variables: Readonly<Record<string, unknown>>,
): Readonly<Record<string, unknown>> | string => {
  if (written.startsWith('$')) {
    const name = written.slice(1);
    if (!(name in variables)) return `Variable $${name} is used but not provided`;
    return fieldsOf(variables[name]);
  }
  const input: Record<string, unknown> = {};
  for (const [, key = '', value = ''] of written.matchAll(LITERAL_FIELD)) {
    if (value.startsWith('$')) {
      const name = value.slice(1);
      if (!(name in variables)) return `Variable $${name} is used but not provided`;
      input[key] = variables[name];
    } else if (value.startsWith('"')) {
      input[key] = JSON.parse(value);
    } else {
      input[key] = value;
    }
  }
  return input;
};

export const parseGraphQLRequest = (body: unknown): GraphQLRequest => {
  const { query, variables } = fieldsOf(body);
  if (typeof query !== 'string') {
    return invalid('A query attribute must be specified and must be a string.');
  }
  if (!/^\s*mutation\b/.test(query)) {
    return invalid(`The GitHub stand-in serves only the ${ENABLE_AUTO_MERGE} mutation`);
  }
  const match = FIELD.exec(query);
  if (match === null) {
    return invalid(`The GitHub stand-in serves only the ${ENABLE_AUTO_MERGE} mutation`);
  }
  const location = locationOf(query, match.index);
  const key = match[1] ?? ENABLE_AUTO_MERGE;
  const input = inputOf(match[2] ?? '', fieldsOf(variables));
  const argumentError = (message: string): GraphQLRequest => ({
    kind: 'invalid',
    errors: [{ type: 'INVALID', path: [key], locations: [location], message }],
  });
  if (typeof input === 'string') return argumentError(input);
  const { pullRequestId, mergeMethod, expectedHeadOid } = input;
  if (typeof pullRequestId !== 'string' || pullRequestId === '') {
    return argumentError(
      "Argument 'input' on Field 'enablePullRequestAutoMerge' has an invalid value: pullRequestId is required (ID!)",
    );
  }
  const method = mergeMethod === undefined ? 'merge' : MERGE_METHODS[String(mergeMethod)];
  if (method === undefined) {
    return argumentError(
      `Argument 'mergeMethod' on InputObject 'EnablePullRequestAutoMergeInput' has an invalid value (${JSON.stringify(mergeMethod)}). Expected type 'PullRequestMergeMethod'.`,
    );
  }
  return {
    kind: 'enable-auto-merge',
    request: {
      key,
      location,
      pullRequestId,
      mergeMethod: method,
      ...(typeof expectedHeadOid === 'string' ? { expectedHeadOid } : {}),
    },
  };
};

/** GitHub's answer to a failed mutation: `data` with the field null, and the error. */
export const mutationError = (
  request: EnableAutoMergeRequest,
  type: GraphQLErrorType,
  message: string,
): { data: Record<string, null>; errors: GraphQLError[] } => ({
  data: { [request.key]: null },
  errors: [{ type, path: [request.key], locations: [request.location], message }],
});
