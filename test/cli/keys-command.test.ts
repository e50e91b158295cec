import { mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { createKeySet } from '../../functions/cli/keys-command.ts';
import { decodePipelineSecret, webhookKeys } from '../../functions/core/pipeline-secret.ts';
import { FIXTURES } from '../support/fixtures.ts';
import { type PromoterRun, runPromoter } from '../support/promoter-cli.ts';

/** `promoter keys` as a user runs it (a child process), and its key set function. */
const BASE64URL_32_BYTES = /^[A-Za-z0-9_-]{43}$/;

const promoter = (args: string[]): Promise<PromoterRun> => runPromoter(args);

const documents = (text: string): unknown[] =>
  parseAllDocuments(text).map((document) => {
    expect(document.errors).toEqual([]);
    return document.toJS();
  });

interface ProviderSecretManifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; annotations: Record<string, string> };
  type: string;
  stringData: Record<string, string>;
}

describe('promoter keys', () => {
  it('prints the secret JSON and one Provider Secret per environment, with fresh distinct keys', async () => {
    // Act
    const run = await promoter(['keys', 'flux-system/podinfo', '--envs', 'dev,staging,prod']);
    const again = await promoter(['keys', 'flux-system/podinfo', '--envs', 'dev,staging,prod']);

    // Assess
    expect(run).toMatchObject({ code: 0, stderr: '' });
    const [secret, ...manifests] = documents(run.stdout) as [
      Record<string, string>,
      ...ProviderSecretManifest[],
    ];
    expect(Object.keys(secret)).toEqual([
      'hmac-key',
      'hmac-key-dev',
      'hmac-key-staging',
      'hmac-key-prod',
    ]);
    const keys = Object.values(secret);
    for (const key of keys) expect(key).toMatch(BASE64URL_32_BYTES);
    expect(new Set(keys).size).toBe(4);
    const [againSecret] = documents(again.stdout) as [Record<string, string>];
    for (const key of Object.values(againSecret)) expect(keys).not.toContain(key);

    expect(manifests.map((manifest) => manifest.metadata.annotations)).toEqual(
      ['dev', 'staging', 'prod'].map((environment) => ({
        'pipeline-promoter/pipeline': 'flux-system/podinfo',
        'pipeline-promoter/environment': environment,
      })),
    );
    for (const [index, environment] of ['dev', 'staging', 'prod'].entries()) {
      expect(manifests[index]).toMatchObject({
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'promoter-webhook' },
        type: 'Opaque',
        stringData: { token: secret[`hmac-key-${environment}`] },
      });
      expect(Object.keys(manifests[index]?.stringData ?? {})).toEqual(['token']);
    }
    expect(run.stdout).not.toContain(`token: ${secret['hmac-key']}`);
    expect(run.stdout).toContain('/promotion/flux-system/podinfo/staging');
  });

  it('the secret it prints decodes, and each environment verifies with its own key only', async () => {
    // Act
    const run = await promoter([
      'keys',
      'team-a/shop',
      '--envs',
      'dev,prod',
      '--token-placeholder',
    ]);

    // Assess
    const [value] = documents(run.stdout) as [Record<string, string>];
    expect(value.token).toBe('<GitHub token>');
    const secret = decodePipelineSecret({ namespace: 'team-a', name: 'credentials' }, value);
    expect(webhookKeys(secret, 'dev')).toEqual([value['hmac-key-dev']]);
    expect(webhookKeys(secret, 'prod')).toEqual([value['hmac-key-prod']]);
  });

  it('reads the environments and target namespaces from --pipelines, and writes the JSON to --out (0600)', async () => {
    // Prepare
    const out = join(await mkdtemp(join(tmpdir(), 'promoter-keys-')), 'secret.json');

    // Act
    const run = await promoter([
      'keys',
      'flux-system/podinfo',
      '--pipelines',
      join(FIXTURES, 'pipelines'),
      '--out',
      out,
      '--provider-secret',
      'flux-webhook',
    ]);

    // Assess
    expect(run).toMatchObject({ code: 0, stderr: '' });
    const secret = JSON.parse(await readFile(out, 'utf8')) as Record<string, string>;
    expect(Object.keys(secret)).toEqual([
      'hmac-key',
      'hmac-key-dev',
      'hmac-key-staging',
      'hmac-key-prod',
    ]);
    expect((await stat(out)).mode & 0o777).toBe(0o600);
    const manifests = documents(run.stdout) as ProviderSecretManifest[];
    expect(
      manifests.map((manifest) => [
        manifest.metadata.namespace,
        manifest.metadata.name,
        manifest.stringData.token,
      ]),
    ).toEqual([
      ['podinfo-dev', 'flux-webhook', secret['hmac-key-dev']],
      ['podinfo-qa', 'flux-webhook', secret['hmac-key-staging']],
      ['podinfo-perf', 'flux-webhook', secret['hmac-key-staging']],
      ['podinfo-prod', 'flux-webhook', secret['hmac-key-prod']],
    ]);
    expect(run.stdout).toContain('pipeline-promoter/flux-system/promotion-credentials');
    expect(run.stdout).not.toContain(secret['hmac-key'] ?? 'no approval key');
  });

  it('never overwrites an --out file', async () => {
    // Prepare
    const out = join(await mkdtemp(join(tmpdir(), 'promoter-keys-')), 'secret.json');
    await writeFile(out, '{"hmac-key":"in-use"}');

    // Act
    const run = await promoter(['keys', 'flux-system/podinfo', '--envs', 'dev,prod', '--out', out]);

    // Assess
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('exists: not overwritten');
    expect(await readFile(out, 'utf8')).toBe('{"hmac-key":"in-use"}');
  });

  it.each([
    [['flux-system/podinfo'], 'expected either --envs ENV,ENV,... or --pipelines PATH'],
    [['flux-system', '--envs', 'dev'], 'expected the pipeline as NAMESPACE/NAME'],
    [['Flux/podinfo', '--envs', 'dev'], 'namespace: expected a DNS-1123 label'],
    [['flux-system/podinfo', '--envs', 'dev,Prod'], 'environment: expected a DNS-1123 label'],
    [['flux-system/podinfo', '--envs', 'dev,dev'], 'environment "dev" is listed twice'],
    [['flux-system/podinfo', '--envs', 'dev,previous'], 'hmac-key-previous'],
    [['flux-system/podinfo', '--envs', ','], 'expected at least one environment'],
    [['flux-system/podinfo', '--envs', 'dev', '--secret', 'Bad_Name'], '--secret: expected'],
    [
      ['flux-system/absent', '--pipelines', join(FIXTURES, 'pipelines')],
      'no pipeline flux-system/absent',
    ],
    [
      ['flux-system/nohmac', '--pipelines', join(FIXTURES, 'pipelines')],
      'pipeline flux-system/nohmac is invalid',
    ],
  ])('refuses %j: %s', async (args, message) => {
    // Act
    const run = await promoter(['keys', ...args]);

    // Assess
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr).toContain(message);
  });

  it('--help prints the usage', async () => {
    // Act
    const run = await promoter(['keys', '--help']);

    // Assess
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^promoter keys NAMESPACE\/NAME/);
  });
});

describe('createKeySet', () => {
  it('gives every environment and the approvals a key of their own', () => {
    // Prepare
    let next = 0;
    const newKey = () => {
      next += 1;
      return `key-${next}-0123456789abcdef`;
    };

    // Act
    const keys = createKeySet({
      pipeline: { namespace: 'ns', name: 'app' },
      environments: [
        { name: 'dev', targets: [{ namespace: 'app-dev', cluster: 'dev-1' }] },
        {
          name: 'prod',
          targets: [
            { namespace: 'app', cluster: 'prod-eu' },
            { namespace: 'app', cluster: 'prod-us' },
            { namespace: 'app', cluster: 'prod-us' },
          ],
        },
      ],
      newKey,
    });

    // Assess
    expect(keys.secret).toEqual({
      'hmac-key': 'key-1-0123456789abcdef',
      'hmac-key-dev': 'key-2-0123456789abcdef',
      'hmac-key-prod': 'key-3-0123456789abcdef',
    });
    expect(
      keys.providerSecrets.map((provider) => [provider.environment, provider.cluster]),
    ).toEqual([
      ['dev', 'dev-1'],
      ['prod', 'prod-eu'],
      ['prod', 'prod-us'],
    ]);
  });
});
