import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { type Browser, chromium, type Page } from 'playwright-core';
import { PROMOTER_BIN } from './promoter-cli.ts';
import { STAND_IN_CREDENTIALS } from './signed-api-stand-in.ts';

/**
 * What the status page's browser tests share: Debian's chromium driven headless by
 * playwright-core (no browser download: `.ci/run` installs the `chromium` package), a
 * `promoter` process started as a user starts it (the installed `promoter` bundle), and reading the page's
 * tables by their header cells, as a screen reader does.
 */
export const CHROMIUM = '/usr/bin/chromium';

export const launchChromium = (): Promise<Browser> =>
  chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface PromoterProcess {
  readonly child: ChildProcess;
  /** Every line it printed (JSON lines parsed, others as `{text}`). */
  readonly lines: Record<string, unknown>[];
  /** Resolves to the first line `found` accepts; rejects when the process exits first. */
  waitForLine<T>(what: string, found: (line: Record<string, unknown>) => T | undefined): Promise<T>;
  stop(): Promise<void>;
}

/** `promoter ARGS` as a long-running child process (serve, ui), with `env` added. */
export const startPromoter = (
  args: readonly string[],
  env: Readonly<Record<string, string>> = {},
): PromoterProcess => {
  const child = spawn(process.execPath, [PROMOTER_BIN, ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: Record<string, unknown>[] = [];
  const waiters = new Set<() => void>();
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on('line', (line) => {
      try {
        const parsed: unknown = JSON.parse(line);
        lines.push(
          typeof parsed === 'object' && parsed !== null
            ? (parsed as Record<string, unknown>)
            : { text: line },
        );
      } catch {
        lines.push({ text: line });
      }
      for (const waiter of waiters) waiter();
    });
  }
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    child,
    lines,
    waitForLine: (what, found) =>
      new Promise((resolve, reject) => {
        const check = () => {
          for (const line of lines) {
            const value = found(line);
            if (value !== undefined) {
              waiters.delete(check);
              resolve(value);
              return;
            }
          }
        };
        waiters.add(check);
        check();
        void exited.then(() => {
          if (!waiters.has(check)) return;
          waiters.delete(check);
          reject(
            new Error(
              `promoter ${args[0]} exited before ${what}:\n${lines.map((line) => JSON.stringify(line)).join('\n')}`,
            ),
          );
        });
      }),
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
    },
  };
};

/**
 * `promoter ui --api API --region REGION` on a free port, with static credentials in its
 * environment (the stand-in's unless told) and an empty HOME; resolves once it listens.
 */
export const startUi = async (
  api: string,
  region: string,
  secretAccessKey: string = STAND_IN_CREDENTIALS.secretAccessKey,
): Promise<{ process: PromoterProcess; url: string }> => {
  const home = await mkdtemp(join(tmpdir(), 'ui-home-'));
  const ui = startPromoter(['ui', '--api', api, '--port', '0', '--region', region], {
    HOME: home,
    AWS_ACCESS_KEY_ID: STAND_IN_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: secretAccessKey,
    AWS_EC2_METADATA_DISABLED: 'true',
  });
  const url = await ui.waitForLine(
    'ui to listen',
    (line) => /^promoter ui: (http:\/\/127\.0\.0\.1:\d+)\//.exec(String(line.text ?? ''))?.[1],
  );
  return { process: ui, url };
};

/** Where a cell is: the pipeline's table, the row header's text and the column header's text. */
export interface CellAddress {
  readonly pipeline: string;
  readonly row: string;
  readonly environment: string;
}

/**
 * The text of a cell found by its headers: the pipeline's section (its heading), the column
 * whose `th scope=col` names the environment and the row whose `th scope=row` names the row.
 * Undefined when there is no such cell. Runs in the page.
 */
export const cellText = (page: Page, address: CellAddress): Promise<string | undefined> =>
  page.evaluate(findCell, { ...address, want: 'text' as const }) as Promise<string | undefined>;

/** The `href` of the link in that cell. */
export const cellLink = (page: Page, address: CellAddress): Promise<string | undefined> =>
  page.evaluate(findCell, { ...address, want: 'href' as const }) as Promise<string | undefined>;

/** Waits until the cell's text matches `pattern` (the page refreshes by itself). */
export const waitForCell = async (
  page: Page,
  address: CellAddress,
  pattern: RegExp,
  timeout = 20_000,
): Promise<string> => {
  try {
    await page.waitForFunction(
      cellMatches,
      { ...address, want: 'text' as const, source: pattern.source, flags: pattern.flags },
      { timeout, polling: 100 },
    );
  } catch (error) {
    const shown = await cellText(page, address).catch(() => undefined);
    throw new Error(
      `${address.row} of ${address.environment} never matched ${pattern}: it shows ${JSON.stringify(shown)} (${error instanceof Error ? error.message : String(error)})`,
    );
  }
  return (await cellText(page, address)) ?? '';
};

// Written as a string: it runs in the browser, and tsx's transpiled output of a function
// would name helpers (`__name`) that do not exist there.
const FIND_CELL_SOURCE = `({ pipeline, row, environment, want }) => {
  const clean = (text) => (text || '').replace(/\\s+/g, ' ').trim();
  const section = [...document.querySelectorAll('section.pipeline')].find((candidate) => {
    const heading = candidate.querySelector('h2');
    return heading && clean(heading.firstChild && heading.firstChild.textContent) === pipeline;
  });
  if (!section) return undefined;
  const columns = [...section.querySelectorAll('thead th[scope="col"]')].map((th) => clean(th.textContent));
  const column = columns.indexOf(environment);
  if (column < 0) return undefined;
  const line = [...section.querySelectorAll('tbody tr')].find(
    (tr) => clean(tr.querySelector('th[scope="row"]')?.textContent) === row,
  );
  const cell = line ? line.querySelectorAll('td')[column] : undefined;
  if (!cell) return undefined;
  if (want === 'href') return cell.querySelector('a[href]')?.getAttribute('href') ?? undefined;
  return clean(cell.innerText);
}`;

const findCell = new Function(`return (${FIND_CELL_SOURCE})(arguments[0]);`) as (
  argument: CellAddress & { want: 'text' | 'href' },
) => string | undefined;

const cellMatches = new Function(
  `const text = (${FIND_CELL_SOURCE})(arguments[0]);
  return text !== undefined && new RegExp(arguments[0].source, arguments[0].flags).test(text);`,
) as (argument: CellAddress & { want: 'text'; source: string; flags: string }) => boolean;
