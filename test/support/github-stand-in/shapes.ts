import type { RestEndpointMethodTypes } from '@octokit/plugin-rest-endpoint-methods';
import { nodeId } from './http.ts';
import type {
  MergeableState,
  StandInComment,
  StandInPullRequest,
  StandInRepository,
} from './types.ts';

/**
 * The JSON the stand-in answers, built to GitHub's OpenAPI types (the ones Octokit's REST
 * methods return), so that the compiler says when a shape misses a field GitHub sends.
 */

export type PullRequestJson = RestEndpointMethodTypes['pulls']['get']['response']['data'];
export type PullRequestSimpleJson =
  RestEndpointMethodTypes['pulls']['list']['response']['data'][number];
export type RepositoryJson = PullRequestJson['head']['repo'];
export type FullRepositoryJson = RestEndpointMethodTypes['repos']['get']['response']['data'];
export type SimpleUserJson = PullRequestJson['user'];
export type IssueCommentJson =
  RestEndpointMethodTypes['issues']['createComment']['response']['data'];
export type MergeResultJson = RestEndpointMethodTypes['pulls']['merge']['response']['data'];
export type RateLimitJson = RestEndpointMethodTypes['rateLimit']['get']['response']['data'];

export interface Urls {
  /** `http://host:port` */
  readonly web: string;
  /** `http://host:port/api/v3` */
  readonly api: string;
}

export const urlsOf = (web: string): Urls => ({ web, api: `${web}/api/v3` });

/** Stable user ids by login, as GitHub has them. */
export class UserIds {
  readonly #ids = new Map<string, number>();

  id(login: string): number {
    const key = login.toLowerCase();
    let id = this.#ids.get(key);
    if (id === undefined) {
      id = this.#ids.size + 1;
      this.#ids.set(key, id);
    }
    return id;
  }
}

export const userJson = (
  login: string,
  id: number,
  urls: Urls,
  type: 'User' | 'Organization' = 'User',
): SimpleUserJson => {
  const user = `${urls.api}/users/${login}`;
  return {
    login,
    id,
    node_id: nodeId(type === 'User' ? 'U' : 'O', id),
    avatar_url: `${urls.web}/avatars/u/${id}`,
    gravatar_id: '',
    url: user,
    html_url: `${urls.web}/${login}`,
    followers_url: `${user}/followers`,
    following_url: `${user}/following{/other_user}`,
    gists_url: `${user}/gists{/gist_id}`,
    starred_url: `${user}/starred{/owner}{/repo}`,
    subscriptions_url: `${user}/subscriptions`,
    organizations_url: `${user}/orgs`,
    repos_url: `${user}/repos`,
    events_url: `${user}/events{/privacy}`,
    received_events_url: `${user}/received_events`,
    type,
    site_admin: false,
  };
};

const CREATED = '2024-01-01T00:00:00Z';

export const repositoryJson = (
  repository: StandInRepository,
  owner: SimpleUserJson,
  urls: Urls,
): RepositoryJson => {
  const fullName = `${repository.owner}/${repository.name}`;
  const api = `${urls.api}/repos/${fullName}`;
  const { host, hostname } = new URL(urls.web);
  return {
    id: repository.id,
    node_id: nodeId('R', repository.id),
    name: repository.name,
    full_name: fullName,
    license: null,
    forks: 0,
    permissions: { admin: false, maintain: false, push: true, triage: true, pull: true },
    owner,
    private: repository.private,
    visibility: repository.private ? 'private' : 'public',
    html_url: `${urls.web}/${fullName}`,
    description: null,
    fork: false,
    url: api,
    archive_url: `${api}/{archive_format}{/ref}`,
    assignees_url: `${api}/assignees{/user}`,
    blobs_url: `${api}/git/blobs{/sha}`,
    branches_url: `${api}/branches{/branch}`,
    collaborators_url: `${api}/collaborators{/collaborator}`,
    comments_url: `${api}/comments{/number}`,
    commits_url: `${api}/commits{/sha}`,
    compare_url: `${api}/compare/{base}...{head}`,
    contents_url: `${api}/contents/{+path}`,
    contributors_url: `${api}/contributors`,
    deployments_url: `${api}/deployments`,
    downloads_url: `${api}/downloads`,
    events_url: `${api}/events`,
    forks_url: `${api}/forks`,
    git_commits_url: `${api}/git/commits{/sha}`,
    git_refs_url: `${api}/git/refs{/sha}`,
    git_tags_url: `${api}/git/tags{/sha}`,
    git_url: `git://${host}/${fullName}.git`,
    issue_comment_url: `${api}/issues/comments{/number}`,
    issue_events_url: `${api}/issues/events{/number}`,
    issues_url: `${api}/issues{/number}`,
    keys_url: `${api}/keys{/key_id}`,
    labels_url: `${api}/labels{/name}`,
    languages_url: `${api}/languages`,
    merges_url: `${api}/merges`,
    milestones_url: `${api}/milestones{/number}`,
    notifications_url: `${api}/notifications{?since,all,participating}`,
    pulls_url: `${api}/pulls{/number}`,
    releases_url: `${api}/releases{/id}`,
    ssh_url: `git@${hostname}:${fullName}.git`,
    stargazers_url: `${api}/stargazers`,
    statuses_url: `${api}/statuses/{sha}`,
    subscribers_url: `${api}/subscribers`,
    subscription_url: `${api}/subscription`,
    tags_url: `${api}/tags`,
    teams_url: `${api}/teams`,
    trees_url: `${api}/git/trees{/sha}`,
    clone_url: `${urls.web}/${fullName}.git`,
    mirror_url: null,
    hooks_url: `${api}/hooks`,
    svn_url: `${urls.web}/${fullName}`,
    homepage: null,
    language: null,
    forks_count: 0,
    stargazers_count: 0,
    watchers_count: 0,
    size: 0,
    default_branch: repository.defaultBranch,
    open_issues_count: 0,
    is_template: false,
    topics: [],
    has_issues: true,
    has_projects: false,
    has_wiki: false,
    has_pages: false,
    has_downloads: false,
    has_discussions: false,
    archived: false,
    disabled: false,
    pushed_at: CREATED,
    created_at: CREATED,
    updated_at: CREATED,
    allow_rebase_merge: false,
    allow_squash_merge: repository.allowSquashMerge,
    allow_merge_commit: repository.allowMergeCommit,
    allow_auto_merge: repository.allowAutoMerge,
    delete_branch_on_merge: repository.deleteBranchOnMerge,
    allow_update_branch: false,
    allow_forking: false,
    web_commit_signoff_required: false,
    open_issues: 0,
    watchers: 0,
  };
};

export type MinimalRepositoryJson =
  RestEndpointMethodTypes['repos']['getCombinedStatusForRef']['response']['data']['repository'];

/** The `minimal-repository` shape (e.g. in a combined status). */
export const minimalRepositoryJson = (repository: RepositoryJson): MinimalRepositoryJson => {
  const { license: _license, ...rest } = repository;
  return { ...rest, license: null };
};

export const fullRepositoryJson = (
  repository: StandInRepository,
  owner: SimpleUserJson,
  urls: Urls,
): FullRepositoryJson => {
  const { license, pushed_at, created_at, updated_at, ...rest } = repositoryJson(
    repository,
    owner,
    urls,
  );
  return {
    ...rest,
    license,
    pushed_at: pushed_at ?? CREATED,
    created_at: created_at ?? CREATED,
    updated_at: updated_at ?? CREATED,
    has_discussions: false,
    subscribers_count: 0,
    network_count: 0,
    organization: owner,
  };
};

/** What a pull request's JSON needs besides the stored record. */
export interface PullRequestFacts {
  readonly repository: RepositoryJson;
  readonly owner: SimpleUserJson;
  readonly user: SimpleUserJson;
  readonly mergedBy: SimpleUserJson | null;
  readonly headSha: string;
  readonly baseSha: string;
  readonly comments: number;
  /** GitHub computes it in the background: null until known. */
  readonly mergeable: boolean | null;
  /** `unknown` while `mergeable` is null. */
  readonly mergeableState: MergeableState;
  /** Who enabled auto-merge (null when it is off). */
  readonly autoMergeEnabledBy: SimpleUserJson | null;
}

export const pullRequestJson = (
  pull: StandInPullRequest,
  facts: PullRequestFacts,
  urls: Urls,
): PullRequestJson => {
  const { repository, owner } = facts;
  const api = `${urls.api}/repos/${repository.full_name}`;
  const html = `${urls.web}/${repository.full_name}/pull/${pull.number}`;
  return {
    url: `${api}/pulls/${pull.number}`,
    id: pull.id,
    node_id: nodeId('PR', pull.id),
    html_url: html,
    diff_url: `${html}.diff`,
    patch_url: `${html}.patch`,
    issue_url: `${api}/issues/${pull.number}`,
    commits_url: `${api}/pulls/${pull.number}/commits`,
    review_comments_url: `${api}/pulls/${pull.number}/comments`,
    review_comment_url: `${api}/pulls/comments{/number}`,
    comments_url: `${api}/issues/${pull.number}/comments`,
    statuses_url: `${api}/statuses/${facts.headSha}`,
    number: pull.number,
    state: pull.state,
    locked: false,
    title: pull.title,
    user: facts.user,
    body: pull.body,
    labels: [],
    milestone: null,
    active_lock_reason: null,
    created_at: pull.createdAt,
    updated_at: pull.updatedAt,
    closed_at: pull.closedAt,
    merged_at: pull.mergedAt,
    merge_commit_sha: pull.mergeCommitSha,
    assignee: null,
    assignees: [],
    requested_reviewers: [],
    requested_teams: [],
    head: {
      label: `${repository.owner.login}:${pull.head}`,
      ref: pull.head,
      sha: facts.headSha,
      user: owner,
      repo: repository,
    },
    base: {
      label: `${repository.owner.login}:${pull.base}`,
      ref: pull.base,
      sha: facts.baseSha,
      user: owner,
      repo: repository,
    },
    _links: {
      self: { href: `${api}/pulls/${pull.number}` },
      html: { href: html },
      issue: { href: `${api}/issues/${pull.number}` },
      comments: { href: `${api}/issues/${pull.number}/comments` },
      review_comments: { href: `${api}/pulls/${pull.number}/comments` },
      review_comment: { href: `${api}/pulls/comments{/number}` },
      commits: { href: `${api}/pulls/${pull.number}/commits` },
      statuses: { href: `${api}/statuses/${facts.headSha}` },
    },
    author_association: 'MEMBER',
    auto_merge:
      pull.autoMerge === null || facts.autoMergeEnabledBy === null
        ? null
        : {
            enabled_by: facts.autoMergeEnabledBy,
            merge_method: pull.autoMerge.mergeMethod,
            commit_title:
              pull.autoMerge.mergeMethod === 'squash'
                ? `${pull.title} (#${pull.number})`
                : `Merge pull request #${pull.number} from ${repository.full_name.split('/')[0]}/${pull.head}`,
            commit_message: pull.autoMerge.mergeMethod === 'squash' ? '' : pull.title,
          },
    draft: pull.draft,
    merged: pull.merged,
    mergeable: facts.mergeable,
    rebaseable: null,
    mergeable_state: facts.mergeable === null ? 'unknown' : facts.mergeableState,
    merged_by: facts.mergedBy,
    comments: facts.comments,
    review_comments: 0,
    maintainer_can_modify: false,
    commits: 1,
    additions: 0,
    deletions: 0,
    changed_files: 0,
  };
};

/** The list endpoint's shape: the pull request without what GitHub computes per PR. */
export const pullRequestSimpleJson = (full: PullRequestJson): PullRequestSimpleJson => {
  const {
    merged: _merged,
    mergeable: _mergeable,
    rebaseable: _rebaseable,
    mergeable_state: _mergeableState,
    merged_by: _mergedBy,
    comments: _comments,
    review_comments: _reviewComments,
    maintainer_can_modify: _maintainerCanModify,
    commits: _commits,
    additions: _additions,
    deletions: _deletions,
    changed_files: _changedFiles,
    labels,
    requested_teams: _requestedTeams,
    ...simple
  } = full;
  return {
    ...simple,
    requested_teams: [],
    labels: labels.map((label) => ({ ...label, description: label.description ?? '' })),
  };
};

export const issueCommentJson = (
  comment: StandInComment,
  repository: StandInRepository,
  user: SimpleUserJson,
  urls: Urls,
): IssueCommentJson => {
  const fullName = `${repository.owner}/${repository.name}`;
  return {
    id: comment.id,
    node_id: nodeId('IC', comment.id),
    url: `${urls.api}/repos/${fullName}/issues/comments/${comment.id}`,
    html_url: `${urls.web}/${fullName}/pull/${comment.issueNumber}#issuecomment-${comment.id}`,
    body: comment.body,
    user,
    created_at: comment.createdAt,
    updated_at: comment.updatedAt,
    issue_url: `${urls.api}/repos/${fullName}/issues/${comment.issueNumber}`,
    author_association: 'MEMBER',
    reactions: {
      url: `${urls.api}/repos/${fullName}/issues/comments/${comment.id}/reactions`,
      total_count: 0,
      '+1': 0,
      '-1': 0,
      laugh: 0,
      confused: 0,
      heart: 0,
      hooray: 0,
      eyes: 0,
      rocket: 0,
    },
  };
};
