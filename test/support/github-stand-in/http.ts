import { createHash, randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

/** Routes, bodies and GitHub's error answers, shared by the stand-in's parts. */

export interface Answer {
  readonly status: number;
  readonly body?: unknown;
  readonly headers?: Readonly<Record<string, string>>;
}

export interface Route {
  readonly template: string;
  readonly owner?: string;
  readonly repo?: string;
  readonly number?: number;
  /** A commit SHA or a branch (`/commits/{ref}/...`, `/statuses/{sha}`). */
  readonly ref?: string;
}

export const DOCS = 'https://docs.github.com/enterprise-server@3.14/rest';
export const API_VERSION = '2022-11-28';
export const ENTERPRISE_VERSION = '3.14.0';
const MAX_BODY_BYTES = 1 << 20;

export const timestamp = (date: Date = new Date()): string => `${date.toISOString().slice(0, 19)}Z`;

export const fakeSha = (): string => randomBytes(20).toString('hex');

export const requestId = (): string => randomBytes(8).toString('hex').toUpperCase();

export const nodeId = (prefix: string, id: number): string =>
  `${prefix}_${Buffer.from(`0:${id}`).toString('base64url')}`;

/** GitHub's ETags are weak validators over the representation. */
export const etagOf = (body: unknown): string =>
  `W/"${createHash('sha256').update(JSON.stringify(body)).digest('hex')}"`;

/** `If-None-Match` (a list, `*`, weak or strong) against the current ETag. */
export const matchesEtag = (header: string | undefined, etag: string): boolean => {
  if (header === undefined) return false;
  const bare = (tag: string) => tag.trim().replace(/^W\//, '');
  return header.split(',').some((tag) => tag.trim() === '*' || bare(tag) === bare(etag));
};

const ISSUE_NUMBER = /^[1-9][0-9]*$/;

export const parseRoute = (path: string): Route | undefined => {
  const parts = path.split('/').slice(1).map(decodeURIComponent);
  if (parts.length === 1 && parts[0] === 'rate_limit') return { template: '/rate_limit' };
  if (parts[0] !== 'repos' || parts.length < 3) return undefined;
  const [, owner = '', repo = '', resource, number, sub, ...rest] = parts;
  if (owner === '' || repo === '' || rest.length > 0) return undefined;
  if (resource === undefined) return { template: '/repos/{owner}/{repo}', owner, repo };
  if (resource === 'pulls') {
    if (number === undefined) {
      return { template: '/repos/{owner}/{repo}/pulls', owner, repo };
    }
    if (!ISSUE_NUMBER.test(number)) return undefined;
    const template = '/repos/{owner}/{repo}/pulls/{pull_number}';
    if (sub === undefined) return { template, owner, repo, number: Number(number) };
    if (sub === 'merge')
      return { template: `${template}/merge`, owner, repo, number: Number(number) };
    return undefined;
  }
  if (resource === 'commits' && number !== undefined && number !== '') {
    if (sub === 'status') {
      return { template: '/repos/{owner}/{repo}/commits/{ref}/status', owner, repo, ref: number };
    }
    if (sub === 'check-runs') {
      return {
        template: '/repos/{owner}/{repo}/commits/{ref}/check-runs',
        owner,
        repo,
        ref: number,
      };
    }
    return undefined;
  }
  if (resource === 'statuses' && number !== undefined && number !== '' && sub === undefined) {
    return { template: '/repos/{owner}/{repo}/statuses/{sha}', owner, repo, ref: number };
  }
  if (resource === 'issues' && number !== undefined && sub === 'comments') {
    if (!ISSUE_NUMBER.test(number)) return undefined;
    return {
      template: '/repos/{owner}/{repo}/issues/{issue_number}/comments',
      owner,
      repo,
      number: Number(number),
    };
  }
  return undefined;
};

export const readBody = async (request: IncomingMessage): Promise<Buffer | 'too-large'> => {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) return 'too-large';
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
};

/** A JSON body's fields, or none when it is not an object. */
export const fieldsOf = (body: unknown): Readonly<Record<string, unknown>> =>
  typeof body === 'object' && body !== null && !Array.isArray(body)
    ? (body as Record<string, unknown>)
    : {};

export const validationFailed = (
  documentation: string,
  ...errors: Readonly<Record<string, string>>[]
): Answer => ({
  status: 422,
  body: {
    message: 'Validation Failed',
    errors,
    documentation_url: `${DOCS}/${documentation}`,
    status: '422',
  },
});

/** GitHub's answer to a body that does not fit the operation's JSON schema. */
export const invalidRequest = (documentation: string, detail: string): Answer => ({
  status: 422,
  body: {
    message: `Invalid request.\n\n${detail}`,
    documentation_url: `${DOCS}/${documentation}`,
    status: '422',
  },
});

export const notFound = (documentation = ''): Answer => ({
  status: 404,
  body: { message: 'Not Found', documentation_url: `${DOCS}${documentation}`, status: '404' },
});

export const failure = (status: number, message: string, documentation: string): Answer => ({
  status,
  body: { message, documentation_url: `${DOCS}/${documentation}`, status: String(status) },
});

export const alreadyExists = (label: string): Answer =>
  validationFailed('pulls/pulls#create-a-pull-request', {
    resource: 'PullRequest',
    code: 'custom',
    message: `A pull request already exists for ${label}.`,
  });

/** `per_page` (1 to 100, default 30) and `page` (from 1) of a list request. */
export const pageOf = (query: URLSearchParams): { perPage: number; page: number } => ({
  perPage: Math.min(100, Math.max(1, Number(query.get('per_page') ?? 30) || 30)),
  page: Math.max(1, Number(query.get('page') ?? 1) || 1),
});

/** One page of `items` and GitHub's `Link` header when there is more than one page. */
export const paginate = <T>(
  items: readonly T[],
  query: URLSearchParams,
  url: string,
): { slice: T[]; headers: Record<string, string> } => {
  const { perPage, page } = pageOf(query);
  const slice = items.slice((page - 1) * perPage, page * perPage);
  const headers: Record<string, string> = {};
  const lastPage = Math.max(1, Math.ceil(items.length / perPage));
  if (lastPage > 1) {
    const link = (p: number, rel: string) => {
      const next = new URLSearchParams(query);
      next.set('page', String(p));
      return `<${url}?${next}>; rel="${rel}"`;
    };
    const links: string[] = [];
    if (page > 1) links.push(link(page - 1, 'prev'));
    if (page < lastPage) links.push(link(page + 1, 'next'));
    links.push(link(lastPage, 'last'), link(1, 'first'));
    headers.link = links.join(', ');
  }
  return { slice, headers };
};
