import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
// Type-only: brings vitest into the program for the augmentation, nothing at runtime.
import type {} from 'vitest';

/**
 * `moto_server` (moto 5) as the AWS APIs for tests (DESIGN.md section 8): SQS, Secrets Manager,
 * DynamoDB and CloudWatch on a free loopback port, reached with the real AWS SDK v3 clients
 * through `awsClientConfig(endpoint)`. The vitest global setup (moto-global-setup.ts) starts one
 * server per test run and provides its URL as `inject('motoEndpoint')`; tests isolate themselves
 * with unique resource names, so nothing is reset between them.
 *
 * `MOTO_ENDPOINT=http://host:port` uses a server that is already running (a container in CI)
 * instead of starting one.
 */

declare module 'vitest' {
  export interface ProvidedContext {
    /** `http://127.0.0.1:<port>` of the run's moto_server. */
    motoEndpoint: string;
  }
}

export const MOTO_INSTALL_HINT =
  'moto_server is not installed: the AWS adapter tests run against it. Install it with ' +
  '`pip install "moto[server]"` (moto 5), make sure `moto_server` is on PATH, or set ' +
  'MOTO_ENDPOINT to the URL of a running moto server.';

export interface MotoServer {
  readonly endpoint: string;
  stop(): Promise<void>;
}

export interface StartMotoServerOptions {
  /** The executable, `moto_server` (from PATH) unless told. */
  readonly command?: string;
  /** How long to wait for the server to answer HTTP; 30 s unless told. */
  readonly startTimeoutMs?: number;
}

const HOST = '127.0.0.1';

/** The credentials and region moto accepts: any, as long as they are set. */
export const awsClientConfig = (endpoint: string) => ({
  endpoint,
  region: 'us-east-1',
  credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
});

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, HOST, () => {
      const address = server.address();
      server.close(() => {
        if (address !== null && typeof address === 'object') resolve(address.port);
        else reject(new Error('could not find a free loopback port'));
      });
    });
  });

const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

const answers = async (endpoint: string): Promise<boolean> => {
  try {
    // Any HTTP answer means the server is up; the status does not matter.
    const response = await fetch(`${endpoint}/moto-api/`, { signal: AbortSignal.timeout(1_000) });
    await response.body?.cancel();
    return true;
  } catch {
    return false;
  }
};

const exited = (child: ChildProcess): boolean =>
  child.exitCode !== null || child.signalCode !== null;

const stopChild = async (child: ChildProcess): Promise<void> => {
  if (exited(child)) return;
  const done = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const killed = await Promise.race([done.then(() => true), delay(5_000).then(() => false)]);
  if (!killed && !exited(child)) {
    child.kill('SIGKILL');
    await done;
  }
};

class StartFailure extends Error {
  constructor(
    message: string,
    readonly retry: boolean,
  ) {
    super(message);
  }
}

const startOnce = async (command: string, timeoutMs: number): Promise<MotoServer> => {
  const port = await freePort();
  const endpoint = `http://${HOST}:${port}`;
  const child = spawn(command, ['-H', HOST, '-p', String(port)], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, PYTHONUNBUFFERED: '1' },
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString('utf8')).slice(-4_000);
  });
  let spawnError: NodeJS.ErrnoException | undefined;
  child.once('error', (error: NodeJS.ErrnoException) => {
    spawnError = error;
  });

  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (spawnError?.code === 'ENOENT') throw new StartFailure(MOTO_INSTALL_HINT, false);
    if (spawnError !== undefined) {
      throw new StartFailure(`could not run ${command}: ${spawnError.message}`, false);
    }
    if (exited(child)) {
      // 127: a shell or pyenv shim found no `moto_server`.
      if (child.exitCode === 127 || /command not found|No module named/i.test(stderr)) {
        throw new StartFailure(`${MOTO_INSTALL_HINT}\n${stderr.trim()}`, false);
      }
      // Most likely the port was taken between finding it and binding it: try another one.
      throw new StartFailure(
        `${command} exited with ${child.exitCode ?? child.signalCode} before answering on ${endpoint}:\n${stderr.trim()}`,
        true,
      );
    }
    if (await answers(endpoint)) {
      child.stderr?.removeAllListeners('data');
      child.stderr?.resume();
      return { endpoint, stop: () => stopChild(child) };
    }
    await delay(100);
  }
  await stopChild(child);
  throw new StartFailure(
    `${command} did not answer on ${endpoint} within ${timeoutMs} ms:\n${stderr.trim()}`,
    false,
  );
};

/** Starts moto_server on a free loopback port and waits until it answers HTTP. */
export const startMotoServer = async (
  options: StartMotoServerOptions = {},
): Promise<MotoServer> => {
  const command = options.command ?? 'moto_server';
  const timeoutMs = options.startTimeoutMs ?? 30_000;
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await startOnce(command, timeoutMs);
    } catch (error) {
      if (!(error instanceof StartFailure) || !error.retry || attempt >= 3) {
        throw new Error(error instanceof Error ? error.message : String(error));
      }
    }
  }
};

/** A running server named by `MOTO_ENDPOINT`, checked to answer; stopping it is not ours. */
export const useRunningMotoServer = async (endpoint: string): Promise<MotoServer> => {
  const trimmed = endpoint.replace(/\/+$/, '');
  if (!(await answers(trimmed))) {
    throw new Error(`MOTO_ENDPOINT=${endpoint} does not answer HTTP: start moto_server there`);
  }
  return { endpoint: trimmed, stop: async () => {} };
};
