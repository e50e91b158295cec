import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { ENV } from '../../functions/config.ts';
import { SERVICE_NAMES } from '../../lib/constructs/promoter-functions.ts';
import {
  DEFAULT_SETTINGS,
  PipelinePromoterStack,
  type PipelinePromoterStackProps,
  parseSettings,
} from '../../lib/pipeline-promoter-stack.ts';

/** The worker's git limits and allowed hosts, from the stack's settings to its environment. */
const workerEnvironment = (props: PipelinePromoterStackProps = {}): Record<string, unknown> => {
  // Skip bundling: the template is only read.
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  const template = Template.fromStack(new PipelinePromoterStack(app, 'Settings', props));
  const functions = Object.values(template.findResources('AWS::Lambda::Function')) as {
    Properties: { Environment?: { Variables: Record<string, unknown> } };
  }[];
  const worker = functions.find(
    (resource) =>
      resource.Properties.Environment?.Variables.POWERTOOLS_SERVICE_NAME === SERVICE_NAMES.worker,
  );
  return worker?.Properties.Environment?.Variables ?? {};
};

describe('the git settings of the stack', () => {
  it('gives the worker the documented limits and no allowed host by default', () => {
    // Act
    const environment = workerEnvironment();

    // Assess
    expect(environment).toMatchObject({
      [ENV.gitMaxPackMb]: '256',
      [ENV.gitMaxObjectMb]: '64',
      [ENV.gitMaxDeltaDepth]: '50',
      [ENV.promotionTimeoutSeconds]: '90',
    });
    expect(environment[ENV.allowedGitHosts]).toBeUndefined();
    expect(DEFAULT_SETTINGS).toMatchObject({
      gitMaxPackMb: 256,
      gitMaxObjectMb: 64,
      gitMaxDeltaDepth: 50,
    });
  });

  it('passes the settings on, hosts as a list', () => {
    // Prepare
    const settings = parseSettings({
      gitMaxPackMb: '512',
      gitMaxObjectMb: '16',
      gitMaxDeltaDepth: '100',
      promotionTimeoutSeconds: '60',
      allowedGitHosts: 'git.internal.example.com, 10.0.0.8',
    });

    // Act
    const environment = workerEnvironment(settings);

    // Assess
    expect(environment).toMatchObject({
      [ENV.gitMaxPackMb]: '512',
      [ENV.gitMaxObjectMb]: '16',
      [ENV.gitMaxDeltaDepth]: '100',
      [ENV.promotionTimeoutSeconds]: '60',
      [ENV.allowedGitHosts]: 'git.internal.example.com,10.0.0.8',
    });
  });

  it('keeps the promotion budget under a shorter worker timeout, and refuses one over it', () => {
    // Act
    const shorter = workerEnvironment({ workerTimeoutSeconds: 60 });
    const over = () => workerEnvironment({ workerTimeoutSeconds: 60, promotionTimeoutSeconds: 60 });

    // Assess
    expect(shorter[ENV.promotionTimeoutSeconds]).toBe('45');
    expect(over).toThrow(
      /promotionTimeoutSeconds \(60\) must be at least 1 and under the worker timeout \(60 s\)/,
    );
  });

  it('refuses what is not a host name', () => {
    // Act
    const bad = () => parseSettings({ allowedGitHosts: 'https://git.example.com/' });

    // Assess
    expect(bad).toThrow(/allowedGitHosts: expected host names/);
  });
});
