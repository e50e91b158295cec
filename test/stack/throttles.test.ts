import { readFileSync } from 'node:fs';
import { App } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { SERVICE_NAMES } from '../../lib/constructs/promoter-functions.ts';
import {
  type PipelinePromoterSettings,
  PipelinePromoterStack,
  parseSettings,
  settingsFromContext,
} from '../../lib/pipeline-promoter-stack.ts';

/**
 * Throttles that protect Flux and the sync (issue 9 item 5): each webhook route and each IAM
 * route has its own token bucket, the worker a reserved concurrency its event source stays
 * under. The stacks are synthesised from cdk.json's context without bundling (only read).
 */
const cdkContext = (
  JSON.parse(readFileSync(new URL('../../cdk.json', import.meta.url), 'utf8')) as {
    context: Record<string, unknown>;
  }
).context;

type Resource = { Type: string; Properties: Record<string, unknown>; DependsOn?: string[] };

const synth = (settings: PipelinePromoterSettings = {}): Template => {
  const app = new App({ context: { ...cdkContext, 'aws:cdk:bundling-stacks': [] } });
  return Template.fromStack(
    new PipelinePromoterStack(app, 'Throttles', { ...settingsFromContext(app.node), ...settings }),
  );
};

const functionWithService = (template: Template, service: string): Resource => {
  const found = Object.values(
    template.findResources('AWS::Lambda::Function', {
      Properties: {
        Environment: { Variables: Match.objectLike({ POWERTOOLS_SERVICE_NAME: service }) },
      },
    }),
  ) as Resource[];
  expect(found).toHaveLength(1);
  return found[0] as Resource;
};

const stageOf = (template: Template): Resource => {
  const stages = Object.values(template.findResources('AWS::ApiGatewayV2::Stage')) as Resource[];
  expect(stages).toHaveLength(1);
  return stages[0] as Resource;
};

describe('API throttling by route', () => {
  it('gives the webhook routes and the IAM routes buckets of their own, every route included', () => {
    // Prepare
    const template = synth();
    const routes = template.findResources('AWS::ApiGatewayV2::Route') as Record<string, Resource>;

    // Act
    const stage = stageOf(template);
    const routeKeys = Object.values(routes).map((route) => route.Properties.RouteKey as string);

    // Assess
    expect(stage.Properties.DefaultRouteSettings).toEqual({
      ThrottlingRateLimit: 50,
      ThrottlingBurstLimit: 100,
    });
    expect(stage.Properties.RouteSettings).toMatchObject({
      'POST /promotion/{ns}/{name}/{env}': { ThrottlingRateLimit: 50, ThrottlingBurstLimit: 100 },
      $default: { ThrottlingRateLimit: 50, ThrottlingBurstLimit: 100 },
      'PUT /pipelines': { ThrottlingRateLimit: 10, ThrottlingBurstLimit: 20 },
      'GET /pipelines/{ns}/{name}': { ThrottlingRateLimit: 10, ThrottlingBurstLimit: 20 },
    });
    // No route is left to the stage default: each has a bucket of its own.
    expect(Object.keys(stage.Properties.RouteSettings as object).sort()).toEqual(routeKeys.sort());
    // CloudFormation refuses route settings for a route it has not created yet.
    expect(stage.DependsOn).toEqual(expect.arrayContaining(Object.keys(routes)));
  });

  it('takes the limits from the settings, command-line strings included', () => {
    // Prepare
    const settings = parseSettings({
      webhookThrottlingRateLimit: '5',
      webhookThrottlingBurstLimit: '10',
      iamRoutesThrottlingRateLimit: '2.5',
      iamRoutesThrottlingBurstLimit: '4',
    });

    // Act
    const stage = stageOf(synth(settings));

    // Assess
    expect(stage.Properties.RouteSettings).toMatchObject({
      'POST /promotion/{ns}/{name}/{env}': { ThrottlingRateLimit: 5, ThrottlingBurstLimit: 10 },
      'PUT /pipelines': { ThrottlingRateLimit: 2.5, ThrottlingBurstLimit: 4 },
    });
    expect(() => parseSettings({ iamRoutesThrottlingBurstLimit: '-1' })).toThrow(
      /iamRoutesThrottlingBurstLimit/,
    );
    expect(() => parseSettings({ webhookThrottlingRateLimit: '0' })).toThrow(
      /webhookThrottlingRateLimit/,
    );
  });
});

describe('reserved concurrency', () => {
  it('reserves 10 for the worker, whose event source stays under it, and none for the webhook', () => {
    // Prepare
    const template = synth();

    // Act
    const worker = functionWithService(template, SERVICE_NAMES.worker);
    const webhook = functionWithService(template, SERVICE_NAMES.webhook);

    // Assess
    expect(worker.Properties.ReservedConcurrentExecutions).toBe(10);
    expect(webhook.Properties.ReservedConcurrentExecutions).toBeUndefined();
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      ScalingConfig: { MaximumConcurrency: 10 },
    });
  });

  it('honours the settings, and refuses an event source above the reservation', () => {
    // Prepare
    const template = synth({
      workerReservedConcurrency: 20,
      workerMaxConcurrency: 5,
      webhookReservedConcurrency: 8,
    });

    // Act
    const worker = functionWithService(template, SERVICE_NAMES.worker);
    const webhook = functionWithService(template, SERVICE_NAMES.webhook);

    // Assess
    expect(worker.Properties.ReservedConcurrentExecutions).toBe(20);
    expect(webhook.Properties.ReservedConcurrentExecutions).toBe(8);
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      ScalingConfig: { MaximumConcurrency: 5 },
    });
    expect(() => synth({ workerReservedConcurrency: 4, workerMaxConcurrency: 6 })).toThrow(
      /workerMaxConcurrency \(6\) must not exceed workerReservedConcurrency \(4\)/,
    );
    expect(() => parseSettings({ workerReservedConcurrency: '1' })).toThrow(
      /workerReservedConcurrency/,
    );
  });
});
