import { createPublicKey, type KeyObject, randomBytes, verify } from 'node:crypto';
import { type Answer, DOCS, notFound, timestamp } from './http.ts';

/**
 * GitHub Apps in the GitHub stand-in: Apps registered with their public key, installed on an
 * account's repositories (all, or some), and the two routes an App authenticates with a JWT:
 * `GET /repos/{owner}/{repo}/installation` and `POST /app/installations/{id}/access_tokens`.
 *
 * The JWT is checked as GitHub checks it: RS256 signed with the App's key (verified with
 * node:crypto against the registered public key), `iss` the App's ID, `iat` not in the future,
 * `exp` in the future and at most 10 minutes after `iat`; else 401 with GitHub's message. An
 * issued token (`ghs_...`) is handed to `allowToken`, so that the stand-in's REST routes and the
 * git server accept it like any token. The clock (`now`) can be moved to make a JWT expired or
 * not yet valid; `tokenLifetimeSeconds` sets `expires_at`.
 */

export interface StandInApp {
  readonly id: number;
  readonly slug: string;
  readonly publicKey: KeyObject;
}

export interface StandInInstallation {
  readonly id: number;
  readonly appId: number;
  /** The account (user or organisation) it is installed on. */
  readonly account: string;
  /** Repository names of the account, or `all`. */
  readonly repositories: 'all' | readonly string[];
}

export interface IssuedToken {
  readonly installationId: number;
  readonly token: string;
  readonly expiresAt: string;
}

/** GitHub's 401 messages for a JWT it does not accept. */
export const JWT_MESSAGES = {
  undecodable: 'A JSON web token could not be decoded',
  expired:
    "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires",
  notYetValid:
    "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued",
  tooLong: "'Expiration time' claim ('exp') is too far in the future",
} as const;

const PERMISSIONS = { contents: 'write', metadata: 'read', pull_requests: 'write' } as const;
/** GitHub allows a little drift of `iat` into the future. */
const IAT_LEEWAY_SECONDS = 60;

const unauthorized = (message: string): Answer => ({
  status: 401,
  body: { message, documentation_url: DOCS, status: '401' },
});

const decodeSegment = (segment: string): unknown => {
  try {
    return JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
};

export class AppInstallations {
  /** The stand-in's clock for JWT checks and `expires_at`. */
  now: () => Date = () => new Date();
  tokenLifetimeSeconds = 3600;
  readonly issued: IssuedToken[] = [];
  readonly #apps = new Map<number, StandInApp>();
  readonly #installations = new Map<number, StandInInstallation>();
  readonly #allowToken: (token: string) => void;
  #nextInstallationId = 41_000;

  constructor(allowToken: (token: string) => void) {
    this.#allowToken = allowToken;
  }

  /** Registers an App whose JWTs `publicKey` (PEM or KeyObject) verifies. */
  registerApp(id: number, publicKey: string | KeyObject, slug = `app-${id}`): StandInApp {
    const app = { id, slug, publicKey: createPublicKey(publicKey) };
    this.#apps.set(id, app);
    return app;
  }

  /** Installs App `appId` on `account`'s repositories (`all` by default). */
  install(
    appId: number,
    account: string,
    repositories: 'all' | readonly string[] = 'all',
  ): StandInInstallation {
    if (!this.#apps.has(appId)) throw new Error(`No App ${appId} in the stand-in`);
    const installation = { id: this.#nextInstallationId++, appId, account, repositories };
    this.#installations.set(installation.id, installation);
    return installation;
  }

  uninstall(installationId: number): void {
    this.#installations.delete(installationId);
  }

  /**
   * The answer to an App route, or undefined when `path` (after `/api/v3`) is none of them and
   * the stand-in's other routes answer it.
   */
  answer(method: string, path: string, authorization: string | undefined): Answer | undefined {
    const lookup = /^\/repos\/([^/]+)\/([^/]+)\/installation$/.exec(path);
    const tokens = /^\/app\/installations\/([^/]+)\/access_tokens$/.exec(path);
    if (lookup === null && tokens === null) return undefined;
    const app = this.#authenticate(authorization);
    if ('status' in app) return app;
    if (lookup !== null && method === 'GET') {
      const [owner, repo] = [
        decodeURIComponent(lookup[1] ?? ''),
        decodeURIComponent(lookup[2] ?? ''),
      ];
      const installation = [...this.#installations.values()].find(
        (candidate) => candidate.appId === app.id && this.#covers(candidate, owner, repo),
      );
      return installation === undefined
        ? notFound('/apps/apps#get-a-repository-installation-for-the-authenticated-app')
        : { status: 200, body: this.#installationJson(installation, app) };
    }
    if (tokens !== null && method === 'POST') {
      const installation = this.#installations.get(Number(tokens[1]));
      if (installation === undefined || installation.appId !== app.id) {
        return notFound('/apps/apps#create-an-installation-access-token-for-an-app');
      }
      const expiresAt = timestamp(
        new Date(this.now().getTime() + this.tokenLifetimeSeconds * 1000),
      );
      const token = `ghs_${randomBytes(18).toString('hex')}`;
      this.#allowToken(token);
      this.issued.push({ installationId: installation.id, token, expiresAt });
      return {
        status: 201,
        body: {
          token,
          expires_at: expiresAt,
          permissions: PERMISSIONS,
          repository_selection: installation.repositories === 'all' ? 'all' : 'selected',
        },
      };
    }
    return notFound();
  }

  #covers(installation: StandInInstallation, owner: string, repo: string): boolean {
    if (installation.account.toLowerCase() !== owner.toLowerCase()) return false;
    return (
      installation.repositories === 'all' ||
      installation.repositories.some((name) => name.toLowerCase() === repo.toLowerCase())
    );
  }

  #installationJson(installation: StandInInstallation, app: StandInApp): Record<string, unknown> {
    return {
      id: installation.id,
      account: { login: installation.account, type: 'Organization' },
      repository_selection: installation.repositories === 'all' ? 'all' : 'selected',
      access_tokens_url: `/api/v3/app/installations/${installation.id}/access_tokens`,
      app_id: app.id,
      app_slug: app.slug,
      target_type: 'Organization',
      permissions: PERMISSIONS,
      events: [],
      created_at: timestamp(),
      updated_at: timestamp(),
      single_file_name: null,
      suspended_at: null,
    };
  }

  /** The App a `Bearer <JWT>` authorization proves, or GitHub's 401. */
  #authenticate(authorization: string | undefined): StandInApp | Answer {
    const jwt = /^bearer\s+(\S+)\s*$/i.exec(authorization ?? '')?.[1];
    const parts = jwt?.split('.') ?? [];
    const [header, payload, signature] = parts;
    if (parts.length !== 3 || header === undefined || payload === undefined || !signature) {
      return unauthorized(JWT_MESSAGES.undecodable);
    }
    const head = decodeSegment(header) as { alg?: unknown } | undefined;
    const claims = decodeSegment(payload) as
      | { iss?: unknown; iat?: unknown; exp?: unknown }
      | undefined;
    const app = this.#apps.get(Number(claims?.iss));
    if (head?.alg !== 'RS256' || claims === undefined || app === undefined) {
      return unauthorized(JWT_MESSAGES.undecodable);
    }
    const signed = verify(
      'sha256',
      Buffer.from(`${header}.${payload}`),
      app.publicKey,
      Buffer.from(signature, 'base64url'),
    );
    if (!signed) return unauthorized(JWT_MESSAGES.undecodable);
    const now = Math.floor(this.now().getTime() / 1000);
    const { iat, exp } = claims;
    if (typeof iat !== 'number' || !Number.isInteger(iat) || iat > now + IAT_LEEWAY_SECONDS) {
      return unauthorized(JWT_MESSAGES.notYetValid);
    }
    if (typeof exp !== 'number' || exp <= now) return unauthorized(JWT_MESSAGES.expired);
    if (exp - iat > 600) return unauthorized(JWT_MESSAGES.tooLong);
    return app;
  }
}
