import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * A GitHub Enterprise Server behind a private CA (README: GitHub Enterprise Server): the
 * connections of git and Octokit (guardedFetch on node:https) and the CLI's fetch trust a CA
 * given in NODE_EXTRA_CA_CERTS, and only then. Node reads the variable at start-up, so each
 * client is a child process.
 */
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CA = fileURLToPath(new URL('../support/private-ca/ca.pem', import.meta.url));
const tls = (name: string) =>
  readFileSync(fileURLToPath(new URL(`../support/private-ca/${name}`, import.meta.url)));

const CLIENT = `
import { createGuardedAgents, guardedFetch } from './functions/adapters/guarded-http.ts';
const url = process.argv[1];
const outcome = (promise) =>
  promise.then((response) => response.status, (error) => error.cause?.code ?? error.code ?? error.message);
const guarded = guardedFetch(createGuardedAgents({ allow: ['loopback'], allowedHosts: [] }));
console.log(JSON.stringify({ guarded: await outcome(guarded(url)), fetch: await outcome(fetch(url)) }));
`;

const client = (url: string, env: Record<string, string>): Promise<unknown> =>
  new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '--eval', CLIENT, url],
      {
        cwd: ROOT,
        env: { PATH: process.env.PATH ?? '', ...env },
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8');
    });
    child.once('error', reject);
    child.once('close', () => resolve(JSON.parse(stdout)));
  });

describe('NODE_EXTRA_CA_CERTS', () => {
  let server: Server;
  let url: string;

  beforeAll(async () => {
    server = createServer(
      { key: tls('server-key.pem'), cert: tls('server.pem') },
      (_request, response) => {
        response.end('ok');
      },
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `https://localhost:${(server.address() as AddressInfo).port}/api/v3/`;
  });

  afterAll(() => {
    server.close();
  });

  it('makes git, the GitHub API client and the CLI trust a private CA, which they refuse without it', async () => {
    // Act
    const [without, withCa] = await Promise.all([
      client(url, {}),
      client(url, { NODE_EXTRA_CA_CERTS: CA }),
    ]);

    // Assess
    expect(without).toEqual({
      guarded: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
      fetch: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
    });
    expect(withCa).toEqual({ guarded: 200, fetch: 200 });
  });
});
