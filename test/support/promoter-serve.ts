import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { PipelineStatus } from '../../functions/core/pipeline-status.ts';
import { signBody } from '../../functions/core/signature.ts';
import { FIXTURE_HMAC_KEY } from './fixtures.ts';
import { PROMOTER_BIN } from './promoter-cli.ts';

/**
 * `promoter serve` as a user starts it, for the end-to-end tests: the installed `promoter`
 * bundle, files on disk, its log read line by line, and bounded polling of what it does by
 * itself.
 */
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface Answer {
  readonly status: number;
  readonly body: Record<string, unknown>;
}

export interface RunningServe {
  readonly url: string;
  /** The process, for what a user does to it (Ctrl-C). */
  readonly child: ChildProcessWithoutNullStreams;
  /** Every line serve printed (JSON lines parsed; others as `{text}`). */
  readonly logs: readonly Record<string, unknown>[];
  /** `value` or, when it stays undefined past `ms`, an error that shows serve's log. */
  waitFor<T>(
    what: string,
    probe: () => T | undefined | Promise<T | undefined>,
    ms?: number,
  ): Promise<T>;
  /** `POST path` with `body` signed with `key` (default the tests' key), as Flux sends it. */
  postSigned(path: string, body: string, key?: string, signature?: string): Promise<Answer>;
  /** `POST path` with a JSON body and no signature (serve's loopback control routes). */
  postJson(path: string, body: unknown): Promise<Answer>;
  /** `GET /pipelines/flux-system/{name}`. */
  status(name: string): Promise<PipelineStatus>;
  stop(): Promise<void>;
}

const answerOf = async (response: Response): Promise<Answer> => ({
  status: response.status,
  body: (await response.json()) as Record<string, unknown>,
});

/**
 * Writes `pipelines` (a manifest's text, or documents made one YAML stream) and `secrets` to a
 * temporary folder and starts `promoter serve --port 0` on them (its git cache and data in that
 * folder) with `args`; resolves once it listens.
 */
export const startPromoterServe = async (options: {
  readonly pipelines: string | readonly Record<string, unknown>[];
  readonly secrets: Readonly<Record<string, unknown>>;
  readonly args?: readonly string[];
}): Promise<RunningServe> => {
  const folder = await mkdtemp(join(tmpdir(), 'promoter-serve-'));
  const pipelinesPath = join(folder, 'pipelines.yaml');
  await writeFile(
    pipelinesPath,
    typeof options.pipelines === 'string'
      ? options.pipelines
      : options.pipelines.map((pipeline) => JSON.stringify(pipeline)).join('\n---\n'),
  );
  await writeFile(join(folder, 'secrets.json'), JSON.stringify(options.secrets));
  const child: ChildProcessWithoutNullStreams = spawn(
    process.execPath,
    [
      PROMOTER_BIN,
      'serve',
      '--port',
      '0',
      '--pipelines',
      pipelinesPath,
      '--secrets',
      join(folder, 'secrets.json'),
      '--git-cache',
      join(folder, 'git-cache'),
      '--data',
      join(folder, 'data'),
      ...(options.args ?? []),
    ],
    { cwd: ROOT },
  );
  const logs: Record<string, unknown>[] = [];
  // Powertools writes warnings and errors to stderr, the rest to stdout: read both.
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on('line', (line) => {
      try {
        logs.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        logs.push({ text: line });
      }
    });
  }
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const waitFor: RunningServe['waitFor'] = async (what, probe, ms = 20_000) => {
    const deadline = Date.now() + ms;
    for (;;) {
      const value = await probe();
      if (value !== undefined) return value;
      if (Date.now() > deadline || child.exitCode !== null) {
        throw new Error(
          `timed out waiting for ${what}; serve logged:\n${logs.map((line) => JSON.stringify(line)).join('\n')}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };
  const url = await waitFor(
    'serve to listen',
    () =>
      logs.find((line) => line.message === 'promoter serve listening')?.url as string | undefined,
    30_000,
  );
  return {
    url,
    child,
    logs,
    waitFor,
    postSigned: async (path, body, key = FIXTURE_HMAC_KEY, signature = signBody(body, key)) =>
      answerOf(
        await fetch(`${url}${path}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-signature': signature },
          body,
        }),
      ),
    postJson: async (path, body) =>
      answerOf(
        await fetch(`${url}${path}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body),
        }),
      ),
    status: async (name) => {
      const response = await fetch(`${url}/pipelines/flux-system/${name}`);
      if (response.status !== 200) {
        throw new Error(`status of ${name}: ${response.status} ${await response.text()}`);
      }
      return (await response.json()) as PipelineStatus;
    },
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
};
