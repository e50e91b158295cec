#!/usr/bin/env node
/**
 * The CDK app (`cdk.json`: `npx tsx bin/app.ts`). Settings come from the context: `cdk.json`
 * `context`, overridden by `npx cdk deploy -c key=value`. cdk-nag's AWS Solutions and Serverless
 * packs check every synth; an unacknowledged finding fails it.
 */
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks, ServerlessChecks } from 'cdk-nag';
import { checkContextKeys } from '../functions/config.ts';
import {
  PipelinePromoterStack,
  SETTING_NAMES,
  settingsFromContext,
} from '../lib/pipeline-promoter-stack.ts';

const app = new App();
// cdk-nag v3 packs are CDK validation plugins: they run at the end of every synth, and any
// unacknowledged finding (error or warning) fails it.
Validations.of(app).addPlugins(
  new AwsSolutionsChecks(app, { verbose: true }),
  new ServerlessChecks(app, { verbose: true }),
);

// A misspelt setting in cdk.json or -c would otherwise be ignored, its default used in silence.
checkContextKeys(Object.keys(app.node.getAllContext()), ['stackName', ...SETTING_NAMES]);

const stackName: unknown = app.node.tryGetContext('stackName');
new PipelinePromoterStack(app, 'PipelinePromoter', {
  ...(typeof stackName === 'string' && stackName !== '' ? { stackName } : {}),
  ...settingsFromContext(app.node),
});

app.synth();
