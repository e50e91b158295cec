import { createHash } from 'node:crypto';
import { createAppAuth } from '@octokit/auth-app';
import { Octokit } from '@octokit/core';
import { PromoterError } from '../core/errors.ts';
import { type AddressPolicy, refuseInsecureUrl, SELF_HOSTED_ADDRESS_POLICY } from '../core/http.ts';
import { secretId } from '../core/pipeline-secret.ts';
import {
  type Clock,
  type GitHubAppTokenRequest,
  type GitHubAppTokens,
  systemClock,
} from '../core/ports.ts';
import { createGuardedAgents, guardedFetch, refusedConnection } from './guarded-http.ts';

/*
 * The GitHubAppTokens port on GitHub (github.com and GitHub Enterprise Server). `@octokit/auth-app`
 * signs the App's JWT (RS256, 10 minutes, issued 30 s in the past for clock drift); with it the
 * installation is looked up from the repository (`GET /repos/{owner}/{repo}/installation`) when
 * the secret does not name it, and an installation token is asked for
 * (`POST /app/installations/{id}/access_tokens`).
 *
 * One token per installation is kept until `refreshBeforeExpiryMs` before GitHub's `expires_at`,
 * by this adapter's clock, and concurrent askers of one installation share one request: the
 * worker's git and API calls and the reconcile sweep all use it. The keys of that cache include a
 * digest of the private key, so a secret that only claims an App's ID never gets a token another
 * secret's key obtained. (auth-app's own cache is not used: it keeps tokens 59 minutes by wall
 * time, and its in-flight requests are shared process-wide by installation id alone, which two
 * GitHub Enterprise Servers can both use.)
 *
 * Failures are PromoterErrors that name the secret and the App's ID, never the key, the JWT or a
 * token: GITHUB_APP_AUTH (the key is unusable or GitHub refuses the JWT, a suspended App),
 * GITHUB_APP_NOT_INSTALLED (404), both permanent; GITHUB_APP_UNAVAILABLE (network, 5xx, rate
 * limits), retryable.
 */

export interface GitHubAppTokensOptions {
  /** What decides that a token is about to expire (tests move it). Default: the system's. */
  readonly clock?: Clock;
  /** A token this close to its expiry is replaced (default 5 minutes; GitHub's last 1 hour). */
  readonly refreshBeforeExpiryMs?: number;
  /** Gives up one request to GitHub (as GITHUB_APP_UNAVAILABLE) after this long (default 30 s). */
  readonly timeoutMs?: number;
  /** Default `pipeline-promoter`. */
  readonly userAgent?: string;
  /** Where the API client may connect, checked at connect time (default SELF_HOSTED_ADDRESS_POLICY). */
  readonly addressPolicy?: AddressPolicy;
  /** How many tokens, installation lookups and App clients are kept each (default 1000). */
  readonly maxEntries?: number;
}

interface CachedToken {
  readonly token: string;
  readonly expiresAt: number;
}

type AppAuth = ReturnType<typeof createAppAuth>;

interface AppClient {
  readonly auth: AppAuth;
  readonly octokit: Octokit;
}

interface Context {
  readonly request: GitHubAppTokenRequest;
  readonly baseUrl: string;
  /** `look up the installation of acme/fleet`, `get a token of installation 7`. */
  readonly operation: string;
  readonly installationId?: number;
}

const API_VERSION = '2022-11-28';
const DEFAULT_REFRESH_MS = 5 * 60_000;

const asHttpError = (
  error: unknown,
):
  | {
      status: number;
      message: string;
      response?: { headers?: Record<string, unknown>; data?: unknown };
    }
  | undefined =>
  typeof error === 'object' &&
  error !== null &&
  typeof (error as { status?: unknown }).status === 'number'
    ? (error as { status: number; message: string })
    : undefined;

const githubMessage = (data: unknown, fallback: string): string => {
  const message =
    typeof data === 'object' && data !== null ? (data as { message?: unknown }).message : undefined;
  return typeof message === 'string' ? message : fallback;
};

const checkBaseUrl = (baseUrl: string): string => {
  if (!URL.canParse(baseUrl)) {
    throw new PromoterError('INVALID_CONFIG', `GitHub API base URL ${baseUrl} is not a URL`);
  }
  const refused = refuseInsecureUrl(new URL(baseUrl));
  if (refused !== undefined) {
    throw new PromoterError('INVALID_CONFIG', `GitHub API base URL ${baseUrl}: ${refused}`);
  }
  return baseUrl.replace(/\/+$/, '');
};

/** A Map that forgets its oldest entries past `max`. */
const remember = <K, V>(map: Map<K, V>, key: K, value: V, max: number): V => {
  map.delete(key);
  map.set(key, value);
  while (map.size > max) {
    const oldest = map.keys().next();
    if (oldest.done === true) break;
    map.delete(oldest.value);
  }
  return value;
};

export class GitHubAppInstallationTokens implements GitHubAppTokens {
  readonly #clock: Clock;
  readonly #refreshMs: number;
  readonly #timeoutMs: number;
  readonly #userAgent: string;
  readonly #maxEntries: number;
  readonly #fetch: typeof fetch;
  readonly #clients = new Map<string, AppClient>();
  /** Installation ids (or the lookup under way) by (API base, App, key, repository). */
  readonly #installations = new Map<string, Promise<number>>();
  readonly #tokens = new Map<string, CachedToken>();
  readonly #inFlight = new Map<string, Promise<CachedToken>>();

  constructor(options: GitHubAppTokensOptions = {}) {
    this.#clock = options.clock ?? systemClock;
    this.#refreshMs = options.refreshBeforeExpiryMs ?? DEFAULT_REFRESH_MS;
    this.#timeoutMs = options.timeoutMs ?? 30_000;
    this.#userAgent = options.userAgent ?? 'pipeline-promoter';
    this.#maxEntries = options.maxEntries ?? 1_000;
    const guarded = guardedFetch(
      createGuardedAgents(options.addressPolicy ?? SELF_HOSTED_ADDRESS_POLICY),
    );
    this.#fetch = (input, init = {}) =>
      guarded(input, { ...init, signal: init.signal ?? AbortSignal.timeout(this.#timeoutMs) });
  }

  async installationToken(request: GitHubAppTokenRequest): Promise<string> {
    const baseUrl = checkBaseUrl(request.app.baseUrl ?? request.repository.apiBaseUrl);
    const keyDigest = createHash('sha256').update(request.app.privateKey).digest('hex');
    const app = `${baseUrl}\0${request.app.appId}\0${keyDigest}`;
    const client = this.#client(app, baseUrl, request);
    const installationId =
      request.app.installationId ?? (await this.#installationOf(app, client, baseUrl, request));
    const key = `${app}\0${installationId}`;
    const cached = this.#tokens.get(key);
    if (cached !== undefined && this.#clock.now().getTime() < cached.expiresAt - this.#refreshMs) {
      return cached.token;
    }
    let pending = this.#inFlight.get(key);
    if (pending === undefined) {
      pending = this.#newToken(client, { request, baseUrl, installationId })
        .then((token) => remember(this.#tokens, key, token, this.#maxEntries))
        .finally(() => this.#inFlight.delete(key));
      this.#inFlight.set(key, pending);
    }
    try {
      return (await pending).token;
    } catch (error) {
      // The App may have been uninstalled and installed again: look the repository up anew.
      if (error instanceof PromoterError && error.code === 'GITHUB_APP_NOT_INSTALLED') {
        this.#forgetInstallations(app);
      }
      throw error;
    }
  }

  #client(app: string, baseUrl: string, request: GitHubAppTokenRequest): AppClient {
    const known = this.#clients.get(app);
    if (known !== undefined) return remember(this.#clients, app, known, this.#maxEntries);
    const octokit = new Octokit({
      baseUrl,
      userAgent: this.#userAgent,
      request: { fetch: this.#fetch },
      // Octokit logs nothing of its own here that is worth a line; errors are thrown.
      log: { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} },
    });
    const auth = createAppAuth({
      appId: request.app.appId,
      privateKey: request.app.privateKey,
      request: octokit.request,
      log: { warn: () => {} },
    });
    return remember(this.#clients, app, { auth, octokit }, this.#maxEntries);
  }

  /** A fresh JWT of the App. */
  async #jwt(client: AppClient, request: GitHubAppTokenRequest): Promise<string> {
    try {
      return (await client.auth({ type: 'app' })).token;
    } catch {
      // The signing library's message says nothing the user can act on and might quote the key.
      throw new PromoterError(
        'GITHUB_APP_AUTH',
        `githubAppPrivateKey of secret ${secretId(request.secret)} (GitHub App ${request.app.appId}) is not a usable RSA private key in PEM`,
        { data: { secret: secretId(request.secret), appId: request.app.appId } },
      );
    }
  }

  async #installationOf(
    app: string,
    client: AppClient,
    baseUrl: string,
    request: GitHubAppTokenRequest,
  ): Promise<number> {
    const { owner, repo } = request.repository;
    const key = `${app}\0${owner}/${repo}`.toLowerCase();
    const known = this.#installations.get(key);
    if (known !== undefined) return known;
    const lookup = this.#lookUpInstallation(client, baseUrl, request);
    remember(this.#installations, key, lookup, this.#maxEntries);
    lookup.catch(() => {
      if (this.#installations.get(key) === lookup) this.#installations.delete(key);
    });
    return lookup;
  }

  async #lookUpInstallation(
    client: AppClient,
    baseUrl: string,
    request: GitHubAppTokenRequest,
  ): Promise<number> {
    const { owner, repo } = request.repository;
    const jwt = await this.#jwt(client, request);
    try {
      const { data } = await client.octokit.request('GET /repos/{owner}/{repo}/installation', {
        owner,
        repo,
        headers: { authorization: `bearer ${jwt}`, 'x-github-api-version': API_VERSION },
      });
      return data.id;
    } catch (error) {
      throw appError(
        error,
        { request, baseUrl, operation: `look up its installation on ${owner}/${repo}` },
        jwt,
      );
    }
  }

  #forgetInstallations(app: string): void {
    const prefix = `${app}\0`.toLowerCase();
    for (const key of this.#installations.keys()) {
      if (key.startsWith(prefix)) this.#installations.delete(key);
    }
  }

  async #newToken(
    client: AppClient,
    context: Omit<Context, 'operation' | 'installationId'> & { readonly installationId: number },
  ): Promise<CachedToken> {
    const { request, installationId } = context;
    const jwt = await this.#jwt(client, request);
    try {
      const { data } = await client.octokit.request(
        'POST /app/installations/{installation_id}/access_tokens',
        {
          installation_id: installationId,
          headers: { authorization: `bearer ${jwt}`, 'x-github-api-version': API_VERSION },
        },
      );
      const expiresAt = Date.parse(data.expires_at);
      return {
        token: data.token,
        // A token whose expiry cannot be read is used once, not kept.
        expiresAt: Number.isFinite(expiresAt) ? expiresAt : 0,
      };
    } catch (error) {
      throw appError(
        error,
        { ...context, operation: `get a token of installation ${installationId}` },
        jwt,
      );
    }
  }
}

/** Maps what Octokit threw to a PromoterError naming the secret and the App, never a secret. */
const appError = (error: unknown, context: Context, jwt: string): PromoterError => {
  const refused = refusedConnection(error);
  if (refused !== undefined) return refused;
  const { request, baseUrl, operation } = context;
  const secret = secretId(request.secret);
  const { appId } = request.app;
  const who = `GitHub App ${appId} of secret ${secret}`;
  const data = {
    secret,
    appId,
    apiBaseUrl: baseUrl,
    repository: `${request.repository.owner}/${request.repository.repo}`,
    ...(context.installationId === undefined ? {} : { installationId: context.installationId }),
  };
  const http = asHttpError(error);
  const reason = (text: string) => text.replaceAll(jwt, '[REDACTED]');
  if (http?.response === undefined) {
    const message = error instanceof Error ? error.message : String(error);
    return new PromoterError(
      'GITHUB_APP_UNAVAILABLE',
      reason(`GitHub (${baseUrl}) could not be reached to ${operation} for ${who}: ${message}`),
      { retryable: true, data },
    );
  }
  const { status } = http;
  const message = reason(githubMessage(http.response.data, http.message));
  const headers = http.response.headers ?? {};
  const rateLimited =
    status === 429 ||
    (status === 403 &&
      (headers['retry-after'] !== undefined ||
        String(headers['x-ratelimit-remaining']) === '0' ||
        /rate limit/i.test(message)));
  if (rateLimited || status === 408 || status >= 500) {
    return new PromoterError(
      'GITHUB_APP_UNAVAILABLE',
      `GitHub (${baseUrl}) failed to ${operation} for ${who} (${status} ${message})`,
      { retryable: true, data: { ...data, status } },
    );
  }
  if (status === 401) {
    return new PromoterError(
      'GITHUB_APP_AUTH',
      `GitHub (${baseUrl}) refused the JWT of ${who} (401 ${message}): check githubAppID and githubAppPrivateKey, and this host's clock`,
      { data: { ...data, status } },
    );
  }
  if (status === 404) {
    const what =
      context.installationId === undefined
        ? `is not installed on ${data.repository} (404 on ${baseUrl}): install it there, or set githubAppInstallationID`
        : `has no installation ${context.installationId} on ${baseUrl} (404): check githubAppInstallationID`;
    return new PromoterError('GITHUB_APP_NOT_INSTALLED', `${who} ${what}`, {
      data: { ...data, status },
    });
  }
  return new PromoterError(
    'GITHUB_APP_AUTH',
    `GitHub (${baseUrl}) refused to ${operation} for ${who} (${status} ${message})`,
    { data: { ...data, status } },
  );
};
