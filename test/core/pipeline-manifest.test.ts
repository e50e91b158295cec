import { describe, expect, it } from 'vitest';
import {
  promotionInto,
  promotionSettings,
  webhookSecretFor,
} from '../../functions/core/pipeline.ts';
import {
  describeInvalidPipeline,
  parsePipelineManifests,
  parseRepositoryUrl,
} from '../../functions/core/pipeline-manifest.ts';
import { readFixture } from '../support/fixtures.ts';

const podinfoYaml = readFixture('pipelines/podinfo.yaml');

describe('parsePipelineManifests', () => {
  it('normalises the shipped shape with a per-environment override', () => {
    // Act
    const { pipelines, invalid } = parsePipelineManifests(podinfoYaml);

    // Assess
    expect(invalid).toEqual([]);
    const [podinfo] = pipelines;
    expect(podinfo).toMatchObject({
      namespace: 'flux-system',
      name: 'podinfo',
      hmacSecret: 'promotion-credentials',
      app: { apiVersion: 'helm.toolkit.fluxcd.io/v2', kind: 'HelmRelease', name: 'podinfo' },
    });
    expect(podinfo?.environments.map((environment) => environment.name)).toEqual([
      'dev',
      'staging',
      'prod',
    ]);
    expect(podinfo?.environments[1]?.targets.map((target) => target.namespace)).toEqual([
      'podinfo-qa',
      'podinfo-perf',
    ]);
    if (podinfo === undefined) throw new Error('no pipeline');
    expect(promotionInto(podinfo, 'staging')?.strategy).toMatchObject({
      type: 'pull-request',
      repository: { owner: 'example-org', repo: 'fleet', apiBaseUrl: 'https://api.github.com' },
      credentialsSecret: 'promotion-credentials',
    });
    expect(promotionInto(podinfo, 'prod')?.strategy).toMatchObject({
      repository: { repo: 'fleet-prod' },
      credentialsSecret: 'prod-promotion-credentials',
    });
    expect(webhookSecretFor(podinfo, 'staging')).toBe('promotion-credentials');
  });

  it('normalises the RFC draft shape: appRef.secretRef and a promotion list', () => {
    // Act
    const { pipelines, invalid } = parsePipelineManifests(
      readFixture('pipelines/search-rfc-draft.yaml'),
    );

    // Assess
    expect(invalid).toEqual([]);
    expect(pipelines[0]).toMatchObject({
      namespace: 'shopping',
      name: 'search',
      hmacSecret: 'my-hmac-shared-secret',
      promotion: {
        manual: false,
        strategy: {
          type: 'pull-request',
          baseBranch: 'main',
          credentialsSecret: 'my-gitops-configuration-monorepo-secret',
          repository: {
            provider: 'github',
            cloneUrl: 'https://github.com/organisation/gitops-configuration-monorepo.git',
            owner: 'organisation',
            repo: 'gitops-configuration-monorepo',
          },
        },
      },
    });
  });

  it('reads a kubectl List with server fields, for GitHub Enterprise Server', () => {
    // Act
    const { pipelines, invalid } = parsePipelineManifests(
      readFixture('pipelines/list-from-kubectl.yaml'),
    );

    // Assess
    expect(invalid).toEqual([]);
    expect(pipelines).toHaveLength(1);
    expect(pipelines[0]?.promotion?.strategy).toMatchObject({
      repository: {
        apiBaseUrl: 'https://github.example.com/api/v3',
        owner: 'platform',
        repo: 'fleet',
      },
    });
    expect(JSON.stringify(pipelines[0])).not.toContain('resourceVersion');
  });

  it('refuses a pipeline without an HMAC secret, naming it and where the secretRef goes', () => {
    // Act
    const { pipelines, invalid } = parsePipelineManifests(
      readFixture('pipelines/invalid-no-hmac.yaml'),
    );

    // Assess
    expect(pipelines).toEqual([]);
    expect(invalid).toHaveLength(1);
    const message = describeInvalidPipeline(invalid[0] as (typeof invalid)[0]);
    expect(message).toContain('flux-system/nohmac');
    expect(message).toContain('spec.promotion.strategy.secretRef');
    expect(message).toContain('spec.appRef.secretRef');
  });

  it('reads multi-document YAML and JSON, and reports each bad document with its path', () => {
    // Prepare
    const json = JSON.stringify({
      apiVersion: 'pipelines.weave.works/v1alpha1',
      kind: 'Pipeline',
      metadata: { namespace: 'team', name: 'broken' },
      spec: {
        appRef: { apiVersion: 'v1', kind: 'HelmRelease', name: 'x', secretRef: 'hmac' },
        environments: [
          { name: 'dev', targets: [{ namespace: 'dev' }] },
          { name: 'prod', targets: [{}] },
        ],
        promotion: {
          strategy: {
            'pull-request': {
              type: 'bitbucket-server',
              url: 'https://bitbucket.example.com/a/b',
              baseBranch: 'main',
              secretRef: { name: 's' },
            },
          },
        },
      },
    });
    const text = `${podinfoYaml}\n---\n${readFixture('pipelines/search-rfc-draft.yaml')}\n---\n${json}\n`;

    // Act
    const { pipelines, invalid } = parsePipelineManifests(text);

    // Assess
    expect(pipelines.map((pipeline) => pipeline.name)).toEqual(['podinfo', 'search']);
    expect(invalid).toEqual([
      {
        id: 'team/broken',
        // Every problem at once: the promotion is read too, though the environments are invalid.
        errors: [
          expect.stringMatching(/^spec\.environments\[1\]\.targets\[0\]\.namespace: /),
          expect.stringMatching(
            /^spec\.promotion\.strategy\.pull-request\.type: pull-request type bitbucket-server /,
          ),
        ],
      },
    ]);
  });

  it('says in a sentence that bitbucket-server is not supported yet, and what to use', () => {
    // Prepare
    const text = podinfoYaml.replace(/type: github/g, 'type: bitbucket-server');

    // Act
    const { invalid } = parsePipelineManifests(text);

    // Assess
    expect(invalid[0]?.errors).toEqual([
      'spec.promotion.strategy.pull-request.type: pull-request type bitbucket-server is not supported yet: use github (github.com and GitHub Enterprise Server) or gitlab (gitlab.com and self-managed GitLab).',
      'spec.environments[2].promotion.strategy.pull-request.type: pull-request type bitbucket-server is not supported yet: use github (github.com and GitHub Enterprise Server) or gitlab (gitlab.com and self-managed GitLab).',
    ]);
  });

  it('names the field inside spec.promotion, in either shape', () => {
    const shipped = parsePipelineManifests(
      podinfoYaml.replace(
        /\n {8}baseBranch: main\n {8}secretRef:\n {10}name: promotion-credentials\n {6}secretRef/,
        '\n        secretRef:\n          name: promotion-credentials\n      secretRef',
      ),
    );
    const rfc = parsePipelineManifests(
      readFixture('pipelines/search-rfc-draft.yaml').replace('type: pull-request', 'type: 7'),
    );
    expect(shipped.invalid[0]?.errors).toEqual([
      'spec.promotion.strategy.pull-request.baseBranch: expected a non-empty string',
    ]);
    expect(rfc.invalid[0]?.errors).toEqual([
      'spec.promotion[0].type: expected pull-request or notification',
    ]);
  });

  it('refuses a strategy with both pull-request and notification', () => {
    const text = podinfoYaml.replace(
      '  promotion:\n    strategy:\n      pull-request:',
      '  promotion:\n    strategy:\n      notification: {}\n      pull-request:',
    );
    expect(parsePipelineManifests(text).invalid[0]?.errors).toEqual([
      'spec.promotion.strategy: expected one strategy, pull-request or notification, not both',
    ]);
  });

  it('reads the notification strategy as the default and as an environment override', () => {
    // Prepare
    const text = podinfoYaml
      .replace(
        /\n {2}promotion:\n {4}strategy:\n {6}pull-request:\n(?: {8}.*\n)+? {10}name: promotion-credentials\n/,
        '\n  promotion:\n    strategy:\n      notification: {}\n',
      )
      .replace(
        /\n {10}pull-request:\n(?: {12}.*\n)+? {14}name: prod-promotion-credentials\n/,
        '\n          notification: {}\n',
      );

    // Act
    const { pipelines, invalid } = parsePipelineManifests(text);

    // Assess
    expect(invalid).toEqual([]);
    const pipeline = pipelines[0];
    expect(pipeline?.promotion).toEqual({
      manual: false,
      strategy: { type: 'notification' },
      hmacSecret: 'promotion-credentials',
    });
    expect(pipeline && promotionInto(pipeline, 'prod')?.strategy).toEqual({
      type: 'notification',
    });
  });

  it("reads the RFC draft's notification item", () => {
    const text = readFixture('pipelines/search-rfc-draft.yaml').replace(
      /- name: [^\n]*\n {6}type: pull-request\n(?: {6}.*\n)*/,
      '- type: notification\n',
    );
    const { pipelines, invalid } = parsePipelineManifests(text);
    expect(invalid).toEqual([]);
    expect(pipelines[0]?.promotion?.strategy).toEqual({ type: 'notification' });
  });

  it('refuses fields under strategy.notification, which has none', () => {
    const text = podinfoYaml.replace(
      /\n {6}pull-request:\n(?: {8}.*\n)+? {10}name: promotion-credentials\n/,
      '\n      notification:\n        url: https://ci.example.com\n',
    );
    expect(errorsOf(text)).toEqual([
      expect.stringMatching(/^spec\.promotion\.strategy\.notification\.url: unknown field/),
    ]);
  });

  it('reads a GitLab pull-request strategy with subgroups', () => {
    const text = podinfoYaml
      .replaceAll('type: github', 'type: gitlab')
      .replace(
        'https://github.com/example-org/fleet\n',
        'https://gitlab.example.com/platform/gitops/fleet\n',
      );
    const { pipelines, invalid } = parsePipelineManifests(text);
    expect(invalid).toEqual([]);
    expect(pipelines[0]?.promotion?.strategy).toEqual({
      type: 'pull-request',
      repository: {
        provider: 'gitlab',
        cloneUrl: 'https://gitlab.example.com/platform/gitops/fleet.git',
        apiBaseUrl: 'https://gitlab.example.com/api/v4',
        owner: 'platform/gitops',
        repo: 'fleet',
      },
      baseBranch: 'main',
      credentialsSecret: 'promotion-credentials',
    });
  });

  it.each([
    ['metadata.name', 'name: podinfo\n', 'name: Pod_Info\n', 'subdomain', 'Pod_Info'],
    [
      'metadata.namespace',
      'namespace: flux-system',
      'namespace: flux.system',
      'label',
      'flux.system',
    ],
    ['spec.environments[1].name', '- name: staging', '- name: "stag ing:x"', 'label', 'stag ing:x'],
    ['spec.environments[1].name', '- name: staging', '- name: Staging', 'label', 'Staging'],
    [
      'spec.environments[0].targets[0].namespace',
      '- namespace: podinfo-dev',
      '- namespace: podinfo_dev',
      'label',
      'podinfo_dev',
    ],
    [
      'spec.promotion.strategy.pull-request.secretRef.name',
      '          name: promotion-credentials\n      secretRef',
      '          name: Promotion/Credentials\n      secretRef',
      'subdomain',
      'Promotion/Credentials',
    ],
    [
      'spec.promotion.strategy.secretRef.name',
      '      secretRef:\n        name: promotion-credentials\n',
      '      secretRef:\n        name: "../other"\n',
      'subdomain',
      '../other',
    ],
  ])(
    'refuses %s %s, naming the pipeline, the field and the rule',
    (path, from, to, rule, value) => {
      // Prepare
      const text = podinfoYaml.replace(from, to);
      expect(text).not.toBe(podinfoYaml);

      // Act
      const { pipelines, invalid } = parsePipelineManifests(text);

      // Assess
      expect(pipelines).toEqual([]);
      const id =
        path === 'metadata.name'
          ? `flux-system/${value}`
          : path === 'metadata.namespace'
            ? `${value}/podinfo`
            : 'flux-system/podinfo';
      expect(invalid[0]?.id).toBe(id);
      const errors = invalid[0]?.errors ?? [];
      expect(
        errors.some(
          (error) =>
            error.startsWith(`${path}: expected a DNS-1123 ${rule} (`) &&
            error.endsWith(`, got ${JSON.stringify(value)}`),
        ),
      ).toBe(true);
    },
  );

  it('refuses a secret name that is too long for Kubernetes', () => {
    const long = 'a'.repeat(254);
    const { invalid } = parsePipelineManifests(
      readFixture('pipelines/search-rfc-draft.yaml').replace(
        'secretRef: my-hmac-shared-secret',
        `secretRef: ${long}`,
      ),
    );
    expect(invalid[0]?.errors[0]).toMatch(
      /^spec\.appRef\.secretRef: expected a DNS-1123 subdomain/,
    );
  });

  it.each([
    ['main..prod', 'no ".."'],
    ['main.lock', 'no part ending with ".lock"'],
    ['release/.hidden', 'no part starting with "."'],
    ['release/', 'no leading, trailing or double "/"'],
    ['/main', 'no leading, trailing or double "/"'],
    ['a//b', 'no leading, trailing or double "/"'],
    ['main.', 'not ending with "."'],
    ['-main', 'not starting with "-"'],
    ['HEAD', 'not "HEAD"'],
    ['@', 'not "@"'],
    ['main@{1}', 'no "@{"'],
    ['ma in', 'no space or control character'],
    ['main\u0007', 'no space or control character'],
    ['main~1', 'no "~"'],
    ['main^', 'no "^"'],
    ['a:b', 'no ":"'],
    ['a?', 'no "?"'],
    ['a*', 'no "*"'],
    ['a[b', 'no "["'],
    ['a\\b', 'no "\\\\"'],
  ])('refuses the base branch %j: %s', (branch, rule) => {
    // Prepare
    const text = podinfoYaml.replace(
      '        baseBranch: main\n        secretRef:\n          name: promotion-credentials',
      `        baseBranch: ${JSON.stringify(branch)}\n        secretRef:\n          name: promotion-credentials`,
    );
    expect(text).not.toBe(podinfoYaml);

    // Act
    const { invalid } = parsePipelineManifests(text);

    // Assess
    expect(invalid[0]?.id).toBe('flux-system/podinfo');
    expect(invalid[0]?.errors).toEqual([
      `spec.promotion.strategy.pull-request.baseBranch: expected a git branch name: ${rule}, got ${JSON.stringify(branch)}`,
    ]);
  });

  it('refuses a bad branch in the RFC draft shape too', () => {
    const { invalid } = parsePipelineManifests(
      readFixture('pipelines/search-rfc-draft.yaml').replace('branch: main', 'branch: "main..x"'),
    );
    expect(invalid[0]?.errors).toEqual([
      'spec.promotion[0].branch: expected a git branch name: no "..", got "main..x"',
    ]);
  });

  it.each([['release/1.x'], ['feature/a-b_c'], ['refs/heads/main'], ['v1.2.3']])(
    'accepts the base branch %s',
    (branch) => {
      const { invalid, pipelines } = parsePipelineManifests(
        podinfoYaml.replaceAll('baseBranch: main', `baseBranch: ${branch}`),
      );
      expect(invalid).toEqual([]);
      expect(pipelines[0]?.promotion?.strategy).toMatchObject({ baseBranch: branch });
    },
  );

  it('accepts names at the limits: a 63-character environment and a dotted pipeline name', () => {
    const environment = `e${'x'.repeat(61)}9`;
    const { invalid, pipelines } = parsePipelineManifests(
      podinfoYaml
        .replace('- name: staging', `- name: ${environment}`)
        .replace('name: podinfo\n', 'name: podinfo.v2\n'),
    );
    expect(invalid).toEqual([]);
    expect(pipelines[0]?.name).toBe('podinfo.v2');
    expect(pipelines[0]?.environments[1]?.name).toBe(environment);
  });

  it('refuses a 64-character environment name', () => {
    const { invalid } = parsePipelineManifests(
      podinfoYaml.replace('- name: staging', `- name: ${'e'.repeat(64)}`),
    );
    expect(invalid[0]?.errors[0]).toMatch(
      /^spec\.environments\[1\]\.name: expected a DNS-1123 label \(at most 63/,
    );
  });

  it('reports YAML syntax errors and duplicate pipelines instead of throwing', () => {
    // Act
    const broken = parsePipelineManifests('a: [1, 2', 'broken.yaml');
    const twice = parsePipelineManifests(`${podinfoYaml}\n---\n${podinfoYaml}`);

    // Assess
    expect(broken.invalid[0]?.id).toBe('broken.yaml document 1');
    expect(twice.pipelines).toEqual([]);
    expect(twice.invalid).toEqual([
      { id: 'flux-system/podinfo', errors: ['defined more than once in the input'] },
    ]);
  });
});

const errorsOf = (text: string): readonly string[] | undefined =>
  parsePipelineManifests(text).invalid[0]?.errors;

describe('parsePipelineManifests: unknown and missing fields', () => {
  it.each([
    [
      'a top-level spec key',
      '  environments:',
      '  enviroments:',
      'spec.enviroments: unknown field; did you mean spec.environments?',
    ],
    ['appRef', '  appRef:', '  appref:', 'spec.appref: unknown field; did you mean spec.appRef?'],
    [
      'a key of an environment',
      '      targets:\n        - namespace: podinfo-dev',
      '      target:\n        - namespace: podinfo-dev',
      'spec.environments[0].target: unknown field; did you mean spec.environments[0].targets?',
    ],
    [
      'a key of a target',
      '        - namespace: podinfo-dev',
      '        - namespce: podinfo-dev',
      'spec.environments[0].targets[0].namespce: unknown field; did you mean spec.environments[0].targets[0].namespace?',
    ],
    [
      'a key of a clusterRef',
      '            kind: GitopsCluster\n            name: dev',
      '            knid: GitopsCluster\n            name: dev',
      'spec.environments[0].targets[0].clusterRef.knid: unknown field; did you mean spec.environments[0].targets[0].clusterRef.kind?',
    ],
    [
      'the strategy',
      '  promotion:\n    strategy:',
      '  promotion:\n    stratgy:',
      'spec.promotion.stratgy: unknown field; did you mean spec.promotion.strategy?',
    ],
    [
      'a key of pull-request',
      '        baseBranch: main\n        secretRef:\n          name: promotion-credentials\n      secretRef',
      '        basebranch: main\n        secretRef:\n          name: promotion-credentials\n      secretRef',
      'spec.promotion.strategy.pull-request.basebranch: unknown field; did you mean spec.promotion.strategy.pull-request.baseBranch?',
    ],
    [
      'pull-request itself',
      '  promotion:\n    strategy:\n      pull-request:',
      '  promotion:\n    strategy:\n      pullRequest:',
      'spec.promotion.strategy.pullRequest: unknown field; did you mean spec.promotion.strategy.pull-request?',
    ],
    [
      "an environment's promotion",
      '      promotion:\n        strategy:\n          pull-request:\n            type: github',
      '      promotion:\n        strategy:\n          pull-request:\n            tpye: github',
      'spec.environments[2].promotion.strategy.pull-request.tpye: unknown field; did you mean spec.environments[2].promotion.strategy.pull-request.type?',
    ],
    [
      'kind, at the top level',
      'kind: Pipeline',
      'knd: Pipeline',
      'knd: unknown field; did you mean kind?',
    ],
    [
      'a metadata key',
      'metadata:\n  name: podinfo',
      'metadata:\n  nmae: podinfo',
      'metadata.nmae: unknown field; did you mean metadata.name?',
    ],
  ])('names a misspelt key in %s and the key it likely meant', (_where, from, to, message) => {
    // Prepare
    const text = podinfoYaml.replace(from, to);
    expect(text).not.toBe(podinfoYaml);

    // Act
    const errors = errorsOf(text);

    // Assess: the absence of the meant key is not reported a second time.
    expect(errors).toEqual([message]);
  });

  it('names a misspelt key of the RFC draft shape', () => {
    const text = readFixture('pipelines/search-rfc-draft.yaml').replace(
      'branch: main',
      'brnch: main',
    );
    expect(errorsOf(text)).toEqual([
      'spec.promotion[0].brnch: unknown field; did you mean spec.promotion[0].branch?',
    ]);
  });

  it('lists the fields where an unknown one resembles none of them', () => {
    const text = podinfoYaml.replace('  appRef:\n', '  appRef:\n    colour: blue\n');
    expect(errorsOf(text)).toEqual([
      'spec.appRef.colour: unknown field; the fields here are apiVersion, kind, name, secretRef',
    ]);
  });

  it('says in words what is missing or of the wrong kind', () => {
    // Act
    const missing = errorsOf(podinfoYaml.replace(/ {2}environments:\n(?: {4}.*\n)+/, ''));
    const wrong = errorsOf(podinfoYaml.replace('  environments:', '  environments: 5\n  ignored:'));

    // Assess
    expect(missing).toEqual(['spec.environments: missing: expected a list']);
    expect(wrong?.[0]).toBe('spec.environments: expected a list, got 5');
  });

  it('still reads the open parts of kubectl output: status and server fields', () => {
    const { invalid } = parsePipelineManifests(readFixture('pipelines/list-from-kubectl.yaml'));
    expect(invalid).toEqual([]);
  });
});

describe('parsePipelineManifests: every problem at once', () => {
  it('gives a notification-strategy pipeline without an HMAC secret both messages', () => {
    // Prepare
    const text = podinfoYaml
      .replace(
        /\n {6}pull-request:\n(?: {8}.*\n)+? {10}name: promotion-credentials\n/,
        '\n      notification: {}\n',
      )
      .replace(/ {6}secretRef:\n {8}name: promotion-credentials\n$/, '');
    expect(text).not.toContain('\n      secretRef:\n        name: promotion-credentials\n');

    // Act
    const errors = errorsOf(text);

    // Assess
    expect(errors).toEqual([
      expect.stringMatching(
        /^spec\.promotion\.strategy\.secretRef: expected the secret holding the webhook HMAC key/,
      ),
      "spec.promotion.strategy.notification: the notification strategy signs its notices with the pipeline's hmac-key, so it needs the HMAC secret too (spec.promotion.strategy.secretRef)",
    ]);
  });

  it('reports the schema, the promotion, the HMAC secret and the annotations together', () => {
    // Prepare
    const text = podinfoYaml
      .replace('metadata:\n', 'metadata:\n  annotations:\n    pipeline-promoter/soak.prod: 2d\n')
      .replace('  appRef:\n', '  appRef:\n    colour: blue\n')
      .replace(/type: github/g, 'type: bitbucket-server')
      .replace(/ {6}secretRef:\n {8}name: promotion-credentials\n$/, '');

    // Act
    const errors = errorsOf(text);

    // Assess
    expect(errors).toEqual([
      expect.stringMatching(/^spec\.appRef\.colour: unknown field/),
      expect.stringMatching(
        /^spec\.promotion\.strategy\.pull-request\.type: pull-request type bitbucket-server /,
      ),
      expect.stringMatching(/^spec\.environments\[2\]\.promotion\.strategy\.pull-request\.type: /),
      expect.stringMatching(/^spec\.promotion\.strategy\.secretRef: expected the secret holding/),
      'metadata.annotations["pipeline-promoter/soak.prod"]: expected a duration such as 90s, 30m, 2h or 1h30m, got "2d"',
    ]);
  });

  it('checks the annotation suffixes against the environments even when the spec is invalid elsewhere', () => {
    const text = podinfoYaml
      .replace('metadata:\n', 'metadata:\n  annotations:\n    pipeline-promoter/gate.prd: any\n')
      .replace('  appRef:\n', '  appRef:\n    colour: blue\n');
    expect(errorsOf(text)).toEqual([
      expect.stringMatching(/^spec\.appRef\.colour: unknown field/),
      'metadata.annotations["pipeline-promoter/gate.prd"]: no environment "prd" in this pipeline: its environments are dev, staging and prod; did you mean pipeline-promoter/gate.prod?',
    ]);
  });
});

describe('parsePipelineManifests: settings from annotations', () => {
  it('puts the pipeline-promoter/ annotations on the pipeline as its settings', () => {
    // Prepare
    const text = podinfoYaml.replace(
      'metadata:\n',
      [
        'metadata:',
        '  annotations:',
        '    pipeline-promoter/gate.prod: "2"',
        '    pipeline-promoter/soak.staging: 30m',
        '    pipeline-promoter/window.prod: Mon-Thu 09:00-16:00 Europe/Berlin',
        '    pipeline-promoter/auto-merge.staging: "true"',
        '    example.com/owner: platform',
        '',
      ].join('\n'),
    );

    // Act
    const { pipelines, invalid } = parsePipelineManifests(text);

    // Assess
    expect(invalid).toEqual([]);
    const [podinfo] = pipelines;
    if (podinfo === undefined) throw new Error('no pipeline');
    expect(podinfo.settings).toEqual({
      all: {},
      into: {
        prod: {
          gate: { kind: 'count', count: 2 },
          window: {
            days: [1, 2, 3, 4],
            startMinute: 540,
            endMinute: 960,
            timeZone: 'Europe/Berlin',
            text: 'Mon-Thu 09:00-16:00 Europe/Berlin',
          },
        },
        staging: { soakMs: 1_800_000, autoMerge: true },
      },
    });
    expect(promotionSettings(podinfo, 'staging')).toEqual({
      gate: { kind: 'all' },
      soakMs: 1_800_000,
      autoMerge: true,
    });
  });

  it('leaves the pipeline without settings when no annotation is ours', () => {
    // Prepare
    const annotated = podinfoYaml.replace(
      'metadata:\n',
      'metadata:\n  annotations:\n    example.com/owner: platform\n    example.com/count: 3\n',
    );

    // Act
    const plain = parsePipelineManifests(podinfoYaml).pipelines[0];
    const withOthers = parsePipelineManifests(annotated).pipelines[0];

    // Assess
    expect(plain).toBeDefined();
    expect(plain && 'settings' in plain).toBe(false);
    expect(withOthers).toEqual(plain);
  });

  it('refuses annotations that are not a mapping', () => {
    const text = podinfoYaml.replace('metadata:\n', 'metadata:\n  annotations: [a]\n');
    expect(errorsOf(text)).toEqual(['metadata.annotations: expected a mapping of annotations']);
  });
});

describe('parseRepositoryUrl', () => {
  it.each([
    ['https://github.com/org/repo', 'https://github.com/org/repo.git', 'https://api.github.com'],
    [
      'https://ghe.example.com:8443/org/repo.git',
      'https://ghe.example.com:8443/org/repo.git',
      'https://ghe.example.com:8443/api/v3',
    ],
    ['git@github.com:org/repo.git', 'https://github.com/org/repo.git', 'https://api.github.com'],
    [
      'ssh://git@ghe.example.com/org/repo',
      'https://ghe.example.com/org/repo.git',
      'https://ghe.example.com/api/v3',
    ],
    [
      'http://127.0.0.1:9999/org/repo',
      'http://127.0.0.1:9999/org/repo.git',
      'http://127.0.0.1:9999/api/v3',
    ],
  ])('%s', (url, cloneUrl, apiBaseUrl) => {
    expect(parseRepositoryUrl(url)).toMatchObject({
      cloneUrl,
      apiBaseUrl,
      owner: 'org',
      repo: 'repo',
    });
  });

  it.each([
    [
      'https://gitlab.com/group/project',
      'https://gitlab.com/group/project.git',
      'https://gitlab.com/api/v4',
      'group',
    ],
    [
      'git@gitlab.example.com:platform/gitops/fleet.git',
      'https://gitlab.example.com/platform/gitops/fleet.git',
      'https://gitlab.example.com/api/v4',
      'platform/gitops',
    ],
    [
      'http://127.0.0.1:9999/a/b/c/fleet',
      'http://127.0.0.1:9999/a/b/c/fleet.git',
      'http://127.0.0.1:9999/api/v4',
      'a/b/c',
    ],
  ])('gitlab %s', (url, cloneUrl, apiBaseUrl, owner) => {
    expect(parseRepositoryUrl(url, 'gitlab')).toEqual({
      provider: 'gitlab',
      cloneUrl,
      apiBaseUrl,
      owner,
      repo: cloneUrl.split('/').at(-1)?.replace('.git', ''),
    });
  });

  it('refuses GitLab page URLs and single-segment paths', () => {
    expect(parseRepositoryUrl('https://gitlab.com/group/project/-/tree/main', 'gitlab')).toMatch(
      /expected https:\/\/gitlab.com\/<group>\[\/<subgroup>...\]\/<project>/,
    );
    expect(parseRepositoryUrl('https://gitlab.com/project', 'gitlab')).toMatch(/<group>/);
    expect(parseRepositoryUrl('https://github.com/a/b/c', 'github')).toMatch(/<owner>/);
  });

  it('refuses credentials in the URL without repeating them', () => {
    const message = parseRepositoryUrl('https://bob:ghp_SECRET@github.com/org/repo');
    expect(message).toMatch(/without credentials/);
    expect(message).not.toContain('ghp_SECRET');
    expect(parseRepositoryUrl('https://ghp_SECRET@github.com/o')).not.toContain('ghp_SECRET');
  });

  it('refuses http:// for hosts other than loopback, and URLs without owner/repo', () => {
    expect(parseRepositoryUrl('http://ghe.example.com/org/repo')).toMatch(/http:\/\/ is refused/);
    expect(parseRepositoryUrl('https://github.com/org')).toMatch(
      /expected https:\/\/github.com\/<owner>\/<repository>/,
    );
    expect(parseRepositoryUrl('not a url')).toMatch(/expected an https:\/\/ repository URL/);
  });
});
