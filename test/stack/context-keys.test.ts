import { spawn } from 'node:child_process';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { checkContextKeys } from '../../functions/config.ts';
import { SETTING_NAMES } from '../../lib/pipeline-promoter-stack.ts';

/** The CDK app refuses a context key that is no setting, instead of ignoring it (issue 13). */
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

const synth = (
  context: Record<string, unknown>,
): Promise<{ code: number | null; stderr: string }> =>
  mkdtemp(join(tmpdir(), 'context-keys-')).then(
    (outdir) =>
      new Promise((resolve, reject) => {
        const child = spawn(process.execPath, ['--import', 'tsx', 'bin/app.ts'], {
          cwd: ROOT,
          env: {
            PATH: process.env.PATH ?? '',
            CDK_OUTDIR: outdir,
            CDK_CONTEXT_JSON: JSON.stringify(context),
          },
          stdio: ['ignore', 'ignore', 'pipe'],
        });
        let stderr = '';
        child.stderr.on('data', (chunk: Buffer) => {
          stderr += chunk.toString('utf8');
        });
        child.once('error', reject);
        child.once('close', (code) => resolve({ code, stderr }));
      }),
  );

describe('CDK context keys', () => {
  it('fails the synth on a misspelt key, naming it and the setting it likely means', async () => {
    // Act
    const result = await synth({ stackName: 'PipelinePromoter', workerMemroyMb: 3008 });

    // Assess
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain(
      'unknown context key "workerMemroyMb" (did you mean "workerMemoryMb"?)',
    );
  });

  it("accepts every key of the project's cdk.json", async () => {
    // Prepare
    const { context } = JSON.parse(await readFile(join(ROOT, 'cdk.json'), 'utf8')) as {
      context: Record<string, unknown>;
    };

    // Act
    const check = () => checkContextKeys(Object.keys(context), ['stackName', ...SETTING_NAMES]);

    // Assess
    expect(check).not.toThrow();
  });
});
