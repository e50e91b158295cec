import { spawn } from 'node:child_process';
import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * A real smart-HTTP git server for tests: `git http-backend` (shipped with git) run as a CGI
 * for each request under `GIT_PROJECT_ROOT`. Pushes are allowed; `authorize` decides who may
 * fetch and push (answer 401 with a Basic challenge otherwise).
 */
export interface GitHttpBackendOptions {
  readonly projectRoot: string;
  /** Return false to refuse the request with 401. Receives the decoded Basic credentials. */
  readonly authorize?: (credentials: { username: string; password: string } | undefined) => boolean;
  /** Runs before a push is handed to git (with `/owner/repo.git`): tests move a branch here. */
  readonly beforeReceivePack?: (repositoryUrlPath: string) => Promise<void> | void;
}

const basicCredentials = (
  request: IncomingMessage,
): { username: string; password: string } | undefined => {
  const header = request.headers.authorization;
  if (header === undefined || !header.startsWith('Basic ')) return undefined;
  const decoded = Buffer.from(header.slice(6), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon < 0
    ? { username: decoded, password: '' }
    : { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
};

/** Serves `pathInfo` (`/owner/repo.git/info/refs` and the like) from `projectRoot`. */
export const serveGit = async (
  options: GitHttpBackendOptions,
  request: IncomingMessage,
  response: ServerResponse,
  pathInfo: string,
  query: string,
): Promise<void> => {
  if (options.authorize !== undefined && !options.authorize(basicCredentials(request))) {
    response.writeHead(401, { 'WWW-Authenticate': 'Basic realm="git"' }).end('unauthorized\n');
    return;
  }
  if (pathInfo.endsWith('/git-receive-pack') && options.beforeReceivePack !== undefined) {
    await options.beforeReceivePack(pathInfo.slice(0, -'/git-receive-pack'.length));
  }
  const child = spawn('git', ['http-backend'], {
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      GIT_PROJECT_ROOT: options.projectRoot,
      GIT_HTTP_EXPORT_ALL: '1',
      GIT_CONFIG_COUNT: '1',
      GIT_CONFIG_KEY_0: 'http.receivepack',
      GIT_CONFIG_VALUE_0: 'true',
      REQUEST_METHOD: request.method ?? 'GET',
      PATH_INFO: pathInfo,
      QUERY_STRING: query,
      CONTENT_TYPE: request.headers['content-type'] ?? '',
      REMOTE_ADDR: request.socket.remoteAddress ?? '127.0.0.1',
      REMOTE_USER: basicCredentials(request)?.username || 'anonymous',
      ...(request.headers['content-encoding'] === undefined
        ? {}
        : { HTTP_CONTENT_ENCODING: String(request.headers['content-encoding']) }),
      ...(request.headers['git-protocol'] === undefined
        ? {}
        : { GIT_PROTOCOL: String(request.headers['git-protocol']) }),
    },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  // git answers some requests (a missing repository) without reading the body: ignore the
  // broken pipe rather than crash the test server.
  child.stdin.on('error', () => {});
  request.pipe(child.stdin);
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });

  let head = Buffer.alloc(0);
  let headersSent = false;
  child.stdout.on('data', (chunk: Buffer) => {
    if (headersSent) {
      response.write(chunk);
      return;
    }
    head = Buffer.concat([head, chunk]);
    const end = head.indexOf('\r\n\r\n');
    if (end < 0) return;
    let status = 200;
    for (const line of head.subarray(0, end).toString('latin1').split('\r\n')) {
      const colon = line.indexOf(':');
      if (colon < 0) continue;
      const name = line.slice(0, colon).trim();
      const value = line.slice(colon + 1).trim();
      if (name.toLowerCase() === 'status') status = Number.parseInt(value, 10);
      else response.setHeader(name, value);
    }
    response.writeHead(status);
    headersSent = true;
    response.write(head.subarray(end + 4));
  });
  await new Promise<void>((resolve) => {
    child.on('error', (error) => {
      if (!response.headersSent) response.writeHead(500, { 'content-type': 'text/plain' });
      response.end(`git http-backend failed to start: ${error.message}`);
      resolve();
    });
    child.on('close', (code) => {
      if (!headersSent) {
        response.writeHead(500, { 'content-type': 'text/plain' });
        response.write(`git http-backend exited with ${code}: ${stderr}`);
      }
      response.end();
      resolve();
    });
  });
};
