import { mustGit, runGit } from '../bare-repositories.ts';
import type { GitIdentity, GitMergeOutcome, GitMergeRequest } from './types.ts';

/**
 * Merges as GitHub's merge button does, in a bare repository and without a working tree:
 * `git merge-tree --write-tree` computes the merged tree (or says it conflicts), `commit-tree`
 * makes the merge commit (two parents) or the squash commit (one), and `update-ref` moves the
 * base branch only while it still points at the commit the merge started from.
 */

const identityEnvironment = (author: GitIdentity, committer: GitIdentity): NodeJS.ProcessEnv => {
  const now = `${Math.floor(Date.now() / 1000)} +0000`;
  return {
    GIT_AUTHOR_NAME: author.name,
    GIT_AUTHOR_EMAIL: author.email,
    GIT_AUTHOR_DATE: now,
    GIT_COMMITTER_NAME: committer.name,
    GIT_COMMITTER_EMAIL: committer.email,
    GIT_COMMITTER_DATE: now,
  };
};

/** The merged tree of two commits, or undefined when they conflict. */
const mergedTree = async (
  path: string,
  baseSha: string,
  headSha: string,
): Promise<string | undefined> => {
  const result = await runGit(path, [
    'merge-tree',
    '--write-tree',
    '--no-messages',
    baseSha,
    headSha,
  ]);
  if (result.code === 1) return undefined;
  if (result.code !== 0) {
    throw new Error(`git merge-tree failed (${result.code}): ${result.stderr.trim()}`);
  }
  return result.stdout.toString('utf8').split('\n')[0]?.trim();
};

/** GitHub's default squash body: the squashed commits' messages, oldest first. */
const squashedMessages = async (path: string, baseSha: string, headSha: string) => {
  const log = await mustGit(path, ['log', '--reverse', '--format=* %B', `${baseSha}..${headSha}`]);
  return log.replace(/\n{3,}/g, '\n\n').trim();
};

export const mergeInBareRepository = async (
  path: string,
  request: GitMergeRequest,
): Promise<GitMergeOutcome> => {
  const tree = await mergedTree(path, request.baseSha, request.headSha);
  if (tree === undefined) return { kind: 'conflict' };
  const body =
    request.message ??
    (request.method === 'squash'
      ? await squashedMessages(path, request.baseSha, request.headSha)
      : '');
  const message = body === '' ? `${request.title}\n` : `${request.title}\n\n${body}\n`;
  const parents =
    request.method === 'merge'
      ? ['-p', request.baseSha, '-p', request.headSha]
      : ['-p', request.baseSha];
  const commit = await mustGit(
    path,
    ['commit-tree', tree, ...parents],
    message,
    identityEnvironment(request.author, request.committer),
  );
  const moved = await runGit(path, [
    'update-ref',
    '-m',
    `merge ${request.headSha}`,
    `refs/heads/${request.base}`,
    commit,
    request.baseSha,
  ]);
  if (moved.code !== 0) return { kind: 'base-moved' };
  if (request.deleteBranch !== undefined) {
    // Only while it still holds what was merged: a branch pushed since keeps its new commits.
    await runGit(path, ['update-ref', '-d', `refs/heads/${request.deleteBranch}`, request.headSha]);
  }
  return { kind: 'merged', sha: commit };
};

export const mergeableInBareRepository = async (
  path: string,
  baseSha: string,
  headSha: string,
): Promise<boolean> => (await mergedTree(path, baseSha, headSha)) !== undefined;
