import { describe, expect, it } from 'vitest';
import {
  checkContextKeys,
  DEFAULT_SECRET_PREFIX,
  ENV,
  readPipelinesApiConfig,
  readWebhookConfig,
  readWorkerConfig,
} from '../functions/config.ts';
import { PromoterError } from '../functions/core/errors.ts';

const QUEUE_URL = 'https://sqs.eu-west-1.amazonaws.com/123456789012/pipeline-promoter-jobs.fifo';

/** The least a webhook or worker needs: the table and the queue. */
const minimal = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({
  [ENV.tableName]: 'pipeline-promoter',
  [ENV.queueUrl]: QUEUE_URL,
  ...extra,
});

const configError = (read: () => unknown): PromoterError => {
  try {
    read();
  } catch (error) {
    if (error instanceof PromoterError) return error;
    throw error;
  }
  throw new Error('expected the settings to be refused');
};

describe('readWebhookConfig', () => {
  it('fills in the defaults', () => {
    // Act
    const config = readWebhookConfig(minimal());

    // Assess
    expect(config).toEqual({
      [ENV.tableName]: 'pipeline-promoter',
      [ENV.queueUrl]: QUEUE_URL,
      [ENV.secretPrefix]: DEFAULT_SECRET_PREFIX,
      [ENV.secretTtlSeconds]: 60,
      [ENV.pipelineCacheSeconds]: 30,
      [ENV.maxEventAgeSeconds]: 900,
    });
    expect(config[ENV.promotingReasons]).toBeUndefined();
    expect(config[ENV.awsEndpoint]).toBeUndefined();
  });

  it('reads every setting it is given', () => {
    // Act
    const config = readWebhookConfig(
      minimal({
        [ENV.secretPrefix]: 'custom/',
        [ENV.secretTtlSeconds]: '5',
        [ENV.pipelineCacheSeconds]: '0',
        [ENV.maxEventAgeSeconds]: '600',
        [ENV.promotingReasons]: ' UpgradeSucceeded , InstallSucceeded,,',
        [ENV.awsEndpoint]: 'http://127.0.0.1:5000',
      }),
    );

    // Assess
    expect(config).toMatchObject({
      [ENV.secretPrefix]: 'custom/',
      [ENV.secretTtlSeconds]: 5,
      [ENV.pipelineCacheSeconds]: 0,
      [ENV.maxEventAgeSeconds]: 600,
      [ENV.promotingReasons]: ['UpgradeSucceeded', 'InstallSucceeded'],
      [ENV.awsEndpoint]: 'http://127.0.0.1:5000',
    });
  });

  it.each(['', '   ', ' , ,'])(
    'reads PROMOTER_PROMOTING_REASONS=%j as unset: the default list',
    (value) => {
      // Act
      const config = readWebhookConfig(minimal({ [ENV.promotingReasons]: value }));

      // Assess
      expect(config[ENV.promotingReasons]).toBeUndefined();
    },
  );

  it('refuses a missing table name, naming PROMOTER_TABLE_NAME', () => {
    // Act
    const error = configError(() => readWebhookConfig({ [ENV.queueUrl]: QUEUE_URL }));

    // Assess
    expect(error.code).toBe('INVALID_CONFIG');
    expect(error.message).toContain('PROMOTER_TABLE_NAME');
  });

  it('refuses an empty table name, naming PROMOTER_TABLE_NAME', () => {
    // Act
    const error = configError(() => readWebhookConfig(minimal({ [ENV.tableName]: '' })));

    // Assess
    expect(error.message).toContain('PROMOTER_TABLE_NAME: expected the DynamoDB table name');
  });

  it.each([
    [ENV.maxEventAgeSeconds, '1.5'],
    [ENV.secretTtlSeconds, 'ten'],
    [ENV.pipelineCacheSeconds, '2.25'],
  ])('refuses %s=%j, naming the variable', (name, value) => {
    // Act
    const error = configError(() => readWebhookConfig(minimal({ [name]: value })));

    // Assess
    expect(error.code).toBe('INVALID_CONFIG');
    expect(error.message).toContain(name);
  });

  it('refuses seconds below the minimum, naming the variable', () => {
    // Act
    const error = configError(() => readWebhookConfig(minimal({ [ENV.maxEventAgeSeconds]: '0' })));

    // Assess
    expect(error.message).toContain(`${ENV.maxEventAgeSeconds}: expected seconds >= 1`);
  });

  it('refuses a queue URL that is not a URL, naming PROMOTER_QUEUE_URL', () => {
    // Act
    const error = configError(() =>
      readWebhookConfig(minimal({ [ENV.queueUrl]: 'pipeline-promoter-jobs' })),
    );

    // Assess
    expect(error.message).toContain('PROMOTER_QUEUE_URL');
  });
});

describe('readWorkerConfig', () => {
  it('fills in the defaults and reads the git cache directory', () => {
    // Act
    const plain = readWorkerConfig(minimal());
    const cached = readWorkerConfig(minimal({ [ENV.gitCacheDir]: '/tmp/git-cache' }));

    // Assess
    expect(plain).toEqual({
      [ENV.tableName]: 'pipeline-promoter',
      [ENV.queueUrl]: QUEUE_URL,
      [ENV.secretPrefix]: DEFAULT_SECRET_PREFIX,
      [ENV.secretTtlSeconds]: 60,
      [ENV.pipelineCacheSeconds]: 30,
      [ENV.maxReceiveCount]: 5,
      [ENV.allowedGitHosts]: [],
    });
    expect(plain[ENV.gitCacheDir]).toBeUndefined();
    expect(cached[ENV.gitCacheDir]).toBe('/tmp/git-cache');
  });

  it('refuses a missing table name and queue URL, naming both', () => {
    // Act
    const error = configError(() => readWorkerConfig({}));

    // Assess
    expect(error.code).toBe('INVALID_CONFIG');
    expect(error.message).toContain('PROMOTER_TABLE_NAME');
    expect(error.message).toContain('PROMOTER_QUEUE_URL');
  });

  it('refuses a non-integer seconds value, naming the variable', () => {
    // Act
    const error = configError(() =>
      readWorkerConfig(minimal({ [ENV.pipelineCacheSeconds]: '0.5' })),
    );

    // Assess
    expect(error.message).toContain(`${ENV.pipelineCacheSeconds}: expected whole seconds`);
  });
});

describe('readWorkerConfig: the git limits and allowed hosts', () => {
  it('reads the limits as whole numbers and the hosts as a comma-separated list', () => {
    // Act
    const config = readWorkerConfig(
      minimal({
        [ENV.gitMaxPackMb]: '512',
        [ENV.gitMaxObjectMb]: '16',
        [ENV.gitMaxDeltaDepth]: '100',
        [ENV.promotionTimeoutSeconds]: '60',
        [ENV.allowedGitHosts]: ' git.internal.example.com , 10.0.0.8,,',
      }),
    );

    // Assess
    expect(config).toMatchObject({
      [ENV.gitMaxPackMb]: 512,
      [ENV.gitMaxObjectMb]: 16,
      [ENV.gitMaxDeltaDepth]: 100,
      [ENV.promotionTimeoutSeconds]: 60,
      [ENV.allowedGitHosts]: ['git.internal.example.com', '10.0.0.8'],
    });
  });

  it('refuses a limit that is not a whole number of at least 1, naming the variable', () => {
    // Act
    const error = configError(() => readWorkerConfig(minimal({ [ENV.gitMaxDeltaDepth]: '0' })));

    // Assess
    expect(error.message).toContain(`${ENV.gitMaxDeltaDepth}: expected a number >= 1`);
  });
});

describe('readPipelinesApiConfig', () => {
  it('needs the table and the queue (approvals and unfreezes enqueue jobs)', () => {
    // Act
    const config = readPipelinesApiConfig(minimal());
    const missing = configError(() => readPipelinesApiConfig({})).message;

    // Assess
    expect(config[ENV.tableName]).toBe('pipeline-promoter');
    expect(config[ENV.queueUrl]).toBe(QUEUE_URL);
    expect(missing).toContain('PROMOTER_TABLE_NAME');
    expect(missing).toContain('PROMOTER_QUEUE_URL: expected the SQS queue URL');
  });
});

describe('checkContextKeys', () => {
  const KNOWN = ['stackName', 'workerMemoryMb', 'promotingReasons'];

  it('names a misspelt context key and the setting it likely means', () => {
    // Act
    const error = configError(() =>
      checkContextKeys(['stackName', 'workerMemroyMb', 'colour'], KNOWN),
    );

    // Assess
    expect(error.code).toBe('INVALID_CONFIG');
    expect(error.message).toMatch(
      /^unknown context key "workerMemroyMb" \(did you mean "workerMemoryMb"\?\); unknown context key "colour": the stack's settings are promotingReasons, stackName, workerMemoryMb/,
    );
  });

  it("lets CDK's own keys through: feature flags, aws:cdk:*, lookups and the cdk.json comment", () => {
    // Act
    const check = () =>
      checkContextKeys(
        [
          '@aws-cdk/core:enablePartitionLiterals',
          'aws:cdk:enable-path-metadata',
          'availability-zones:account=123456789012:region=eu-west-1',
          'acknowledged-issue-numbers',
          '//',
          'workerMemoryMb',
        ],
        KNOWN,
      );

    // Assess
    expect(check).not.toThrow();
  });
});
