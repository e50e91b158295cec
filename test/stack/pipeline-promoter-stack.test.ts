import { readFileSync } from 'node:fs';
import { App, RemovalPolicy, Validations } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import type { PolicyValidationPluginReport } from 'aws-cdk-lib/core';
import { AwsSolutionsChecks, ServerlessChecks } from 'cdk-nag';
import { beforeAll, describe, expect, it } from 'vitest';
import { ENV } from '../../functions/config.ts';
import { GITHUB_WEBHOOK_PATH } from '../../functions/core/github-webhook.ts';
import { GITLAB_WEBHOOK_PATH, GITLAB_WEBHOOK_SECRET } from '../../functions/core/gitlab-webhook.ts';
import { METRICS_NAMESPACE } from '../../functions/core/metric-names.ts';
import { ROUTES } from '../../lib/constructs/promoter-api.ts';
import { SERVICE_NAMES } from '../../lib/constructs/promoter-functions.ts';
import {
  PipelinePromoterStack,
  parseSettings,
  settingsFromContext,
} from '../../lib/pipeline-promoter-stack.ts';

/**
 * The stack as `npx cdk synth` builds it (cdk.json's context, the real handlers bundled by the
 * local esbuild, both cdk-nag packs registered), synthesised once for the whole file: bundling
 * takes seconds. The alarm e-mail is set so that the optional SNS topic is checked too.
 */
const cdkContext = (
  JSON.parse(readFileSync(new URL('../../cdk.json', import.meta.url), 'utf8')) as {
    context: Record<string, unknown>;
  }
).context;

type Resource = { Type: string; Properties: Record<string, unknown> } & Record<string, unknown>;
type Statement = {
  Effect: string;
  Action: string | string[];
  Resource: unknown;
  Condition?: unknown;
};

let stack: PipelinePromoterStack;
let template: Template;
let nagReports: PolicyValidationPluginReport[];

const only = (resources: Record<string, Resource>): [string, Resource] => {
  const entries = Object.entries(resources);
  expect(entries).toHaveLength(1);
  return entries[0] as [string, Resource];
};
const actionsOf = (statement: Statement): string[] =>
  Array.isArray(statement.Action) ? statement.Action : [statement.Action];
const resourcesOf = (statement: Statement): unknown[] =>
  Array.isArray(statement.Resource) ? statement.Resource : [statement.Resource];
const functionWithService = (service: string): [string, Resource] =>
  only(
    template.findResources('AWS::Lambda::Function', {
      Properties: {
        Environment: { Variables: Match.objectLike({ POWERTOOLS_SERVICE_NAME: service }) },
      },
    }) as Record<string, Resource>,
  );
const roleLogicalId = (fn: Resource): string =>
  ((fn.Properties.Role as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'] ?? [])[0];
const policyStatementsOfRole = (roleId: string): Statement[] =>
  Object.values(
    template.findResources('AWS::IAM::Policy', {
      Properties: { Roles: Match.arrayWith([{ Ref: roleId }]) },
    }) as Record<string, Resource>,
  ).flatMap((policy) => (policy.Properties.PolicyDocument as { Statement: Statement[] }).Statement);

beforeAll(() => {
  // Prepare: the app of bin/app.ts, with the cdk-nag packs as validation plugins.
  const app = new App({ context: cdkContext });
  const packs = [
    new AwsSolutionsChecks(app, { verbose: true }),
    new ServerlessChecks(app, { verbose: true }),
  ];
  Validations.of(app).addPlugins(...packs);
  stack = new PipelinePromoterStack(app, 'PipelinePromoter', {
    ...settingsFromContext(app.node),
    alarmEmail: 'platform-team@example.com',
  });

  // Act: synthesise (bundles the handlers; the packs run and would fail it on any finding),
  // then run the packs again directly for a readable list of findings.
  template = Template.fromStack(stack);
  nagReports = packs.map((pack) => pack.validateScope(app));
}, 180_000);

describe('the promotion job queue', () => {
  it('is FIFO, encrypted, TLS-only, and redrives to a FIFO dead-letter queue after 5 receives', () => {
    // Prepare
    const queues = template.findResources('AWS::SQS::Queue') as Record<string, Resource>;
    const [dlqId] = only(
      template.findResources('AWS::SQS::Queue', {
        Properties: Match.not(Match.objectLike({ RedrivePolicy: Match.anyValue() })),
      }) as Record<string, Resource>,
    );

    // Act
    const [, jobQueue] = only(
      template.findResources('AWS::SQS::Queue', {
        Properties: { RedrivePolicy: Match.anyValue() },
      }) as Record<string, Resource>,
    );

    // Assess
    expect(Object.keys(queues)).toHaveLength(2);
    expect(jobQueue.Properties).toMatchObject({
      FifoQueue: true,
      ContentBasedDeduplication: false,
      SqsManagedSseEnabled: true,
      RedrivePolicy: { deadLetterTargetArn: { 'Fn::GetAtt': [dlqId, 'Arn'] }, maxReceiveCount: 5 },
    });
    expect(queues[dlqId]?.Properties).toMatchObject({
      FifoQueue: true,
      SqsManagedSseEnabled: true,
    });
    for (const queueId of Object.keys(queues)) {
      template.hasResourceProperties('AWS::SQS::QueuePolicy', {
        Queues: [{ Ref: queueId }],
        PolicyDocument: {
          Statement: Match.arrayWith([
            Match.objectLike({
              Effect: 'Deny',
              Condition: { Bool: { 'aws:SecureTransport': 'false' } },
            }),
          ]),
        },
      });
    }
  });

  it('has a visibility timeout of at least six times the worker timeout', () => {
    // Prepare
    const [, worker] = functionWithService(SERVICE_NAMES.worker);
    const [, jobQueue] = only(
      template.findResources('AWS::SQS::Queue', {
        Properties: { RedrivePolicy: Match.anyValue() },
      }) as Record<string, Resource>,
    );

    // Act
    const workerTimeout = worker.Properties.Timeout as number;
    const visibility = jobQueue.Properties.VisibilityTimeout as number;

    // Assess
    expect(workerTimeout).toBe(120);
    expect(visibility).toBeGreaterThanOrEqual(6 * workerTimeout);
  });

  it('feeds the worker in batches of at most 10, reporting partial batch failures', () => {
    // Prepare
    const [workerId] = functionWithService(SERVICE_NAMES.worker);
    const [jobQueueId] = only(
      template.findResources('AWS::SQS::Queue', {
        Properties: { RedrivePolicy: Match.anyValue() },
      }) as Record<string, Resource>,
    );

    // Act
    const [, mapping] = only(
      template.findResources('AWS::Lambda::EventSourceMapping') as Record<string, Resource>,
    );

    // Assess
    expect(mapping.Properties).toMatchObject({
      EventSourceArn: { 'Fn::GetAtt': [jobQueueId, 'Arn'] },
      FunctionName: { Ref: workerId },
      FunctionResponseTypes: ['ReportBatchItemFailures'],
    });
    expect(mapping.Properties.BatchSize).toBeGreaterThanOrEqual(1);
    expect(mapping.Properties.BatchSize).toBeLessThanOrEqual(10);
  });
});

describe('least privilege', () => {
  /** Actions that have no resource-level permissions: "*" is their only possible resource. */
  const NO_RESOURCE_LEVEL = new Set(['xray:PutTraceSegments', 'xray:PutTelemetryRecords']);

  it('grants no action on Resource "*" that has a resource to name, and no wildcard action', () => {
    // Prepare
    const policies = template.findResources('AWS::IAM::Policy') as Record<string, Resource>;

    // Act
    const statements = Object.values(policies).flatMap(
      (policy) => (policy.Properties.PolicyDocument as { Statement: Statement[] }).Statement,
    );
    const starStatements = statements.filter((statement) => resourcesOf(statement).includes('*'));

    // Assess
    expect(Object.keys(policies).length).toBeGreaterThanOrEqual(3);
    for (const statement of starStatements) {
      expect(actionsOf(statement).every((action) => NO_RESOURCE_LEVEL.has(action))).toBe(true);
    }
    for (const statement of statements) {
      for (const action of actionsOf(statement)) expect(action).not.toMatch(/(^|:)\*$/);
    }
    // No managed policies (AWSLambdaBasicExecutionRole would allow logs on every log group).
    for (const role of Object.values(template.findResources('AWS::IAM::Role'))) {
      expect((role as Resource).Properties.ManagedPolicyArns).toBeUndefined();
    }
  });

  it('lets every function read secrets under the prefix only (the pipelines API for its shared-key warnings)', () => {
    // Prepare
    const expectedArn = {
      'Fn::Join': [
        '',
        [
          'arn:',
          { Ref: 'AWS::Partition' },
          ':secretsmanager:',
          { Ref: 'AWS::Region' },
          ':',
          { Ref: 'AWS::AccountId' },
          ':secret:pipeline-promoter/*',
        ],
      ],
    };

    // Act
    const secretStatements = (service: string) =>
      policyStatementsOfRole(roleLogicalId(functionWithService(service)[1])).filter((statement) =>
        actionsOf(statement).some((action) => action.startsWith('secretsmanager:')),
      );

    // Assess
    for (const service of [
      SERVICE_NAMES.webhook,
      SERVICE_NAMES.worker,
      SERVICE_NAMES.reconcile,
      SERVICE_NAMES.pipelinesApi,
    ]) {
      expect(secretStatements(service)).toEqual([
        {
          Effect: 'Allow',
          Action: 'secretsmanager:GetSecretValue',
          Resource: expectedArn,
        },
      ]);
    }
  });

  it('gives each function its own table, queue and log-group access', () => {
    // Prepare
    const [tableId] = only(
      template.findResources('AWS::DynamoDB::Table') as Record<string, Resource>,
    );
    const statementsOf = (service: string) => {
      const [, fn] = functionWithService(service);
      return policyStatementsOfRole(roleLogicalId(fn));
    };
    const actionsOn = (service: string, prefix: string) =>
      statementsOf(service)
        .flatMap(actionsOf)
        .filter((action) => action.startsWith(prefix))
        .sort();

    // Act
    const webhookSqs = actionsOn(SERVICE_NAMES.webhook, 'sqs:');
    const pipelinesSqs = actionsOn(SERVICE_NAMES.pipelinesApi, 'sqs:');
    const reconcileSqs = actionsOn(SERVICE_NAMES.reconcile, 'sqs:');
    const webhookDynamo = actionsOn(SERVICE_NAMES.webhook, 'dynamodb:');
    const workerDynamo = actionsOn(SERVICE_NAMES.worker, 'dynamodb:');
    const pipelinesDynamo = actionsOn(SERVICE_NAMES.pipelinesApi, 'dynamodb:');
    const reconcileDynamo = actionsOn(SERVICE_NAMES.reconcile, 'dynamodb:');

    // Assess: exactly the commands each function's stores send (GetItem, PutItem, Query, Scan,
    // DeleteItem), and no UpdateItem, which nothing sends. The webhook deletes an environment's
    // incident when it deploys again and reads the targets' reports and the freezes (Query);
    // the sweep lists pipelines and their promotions. An approval, an unfreeze and a gate whose
    // time came enqueue the promotion's job.
    expect(webhookSqs).toEqual(['sqs:SendMessage']);
    expect(pipelinesSqs).toEqual(['sqs:SendMessage']);
    expect(reconcileSqs).toEqual(['sqs:SendMessage']);
    expect(webhookDynamo).toEqual([
      'dynamodb:DeleteItem',
      'dynamodb:GetItem',
      'dynamodb:PutItem',
      'dynamodb:Query',
    ]);
    expect(workerDynamo).toEqual(['dynamodb:GetItem', 'dynamodb:PutItem']);
    expect(reconcileDynamo).toEqual([
      'dynamodb:GetItem',
      'dynamodb:PutItem',
      'dynamodb:Query',
      'dynamodb:Scan',
    ]);
    expect(pipelinesDynamo).toEqual([
      'dynamodb:DeleteItem',
      'dynamodb:GetItem',
      'dynamodb:PutItem',
      'dynamodb:Query',
      'dynamodb:Scan',
    ]);
    for (const service of Object.values(SERVICE_NAMES)) {
      for (const statement of statementsOf(service)) {
        if (actionsOf(statement).some((action) => action.startsWith('dynamodb:'))) {
          expect(statement.Resource).toEqual({ 'Fn::GetAtt': [tableId, 'Arn'] });
        }
        if (actionsOf(statement).some((action) => action.startsWith('logs:'))) {
          expect(statement.Resource).toEqual({
            'Fn::GetAtt': [expect.stringMatching(/LogGroup/), 'Arn'],
          });
        }
      }
    }
  });
});

describe('the table', () => {
  it('has the key design, on-demand billing, PITR, the TTL attribute and is retained', () => {
    // Prepare
    const tables = template.findResources('AWS::DynamoDB::Table') as Record<string, Resource>;

    // Act
    const [, table] = only(tables);

    // Assess
    expect(table.Properties).toMatchObject({
      BillingMode: 'PAY_PER_REQUEST',
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
      AttributeDefinitions: [
        { AttributeName: 'pk', AttributeType: 'S' },
        { AttributeName: 'sk', AttributeType: 'S' },
      ],
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
      DeletionProtectionEnabled: true,
    });
    expect(table.Properties.GlobalSecondaryIndexes).toBeUndefined();
    expect(table.DeletionPolicy).toBe('Retain');
    expect(table.UpdateReplacePolicy).toBe('Retain');
  });
});

describe('the functions', () => {
  it('run Node.js 22 on arm64 as bundled ESM with source maps, Powertools settings and their own log groups', () => {
    // Prepare
    const functions = template.findResources('AWS::Lambda::Function') as Record<string, Resource>;

    // Act
    const services = Object.values(functions).map(
      (fn) =>
        (fn.Properties.Environment as { Variables: Record<string, unknown> }).Variables
          .POWERTOOLS_SERVICE_NAME,
    );

    // Assess
    expect(services.sort()).toEqual(Object.values(SERVICE_NAMES).sort());
    for (const fn of Object.values(functions)) {
      // X-Ray is off by default (`tracing`): Lambda's fixed sampling would trace nearly all.
      expect(fn.Properties.TracingConfig).toBeUndefined();
      expect(fn.Properties).toMatchObject({
        Runtime: 'nodejs22.x',
        Architectures: ['arm64'],
        Handler: 'index.handler',
        LoggingConfig: { LogGroup: { Ref: expect.stringMatching(/LogGroup/) } },
        Environment: {
          Variables: expect.objectContaining({
            NODE_OPTIONS: '--enable-source-maps',
            POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
            [ENV.tableName]: { Ref: expect.any(String) },
          }),
        },
      });
    }
    // The four functions' log groups, the API's access logs and the example rule's log group.
    template.resourcePropertiesCountIs('AWS::Logs::LogGroup', { RetentionInDays: 30 }, 6);
  });

  it('gives the worker one vCPU, 120 s, 2 GiB of /tmp and its git cache, the webhook its queue', () => {
    // Prepare
    const [, worker] = functionWithService(SERVICE_NAMES.worker);
    const [, webhook] = functionWithService(SERVICE_NAMES.webhook);

    // Act
    const workerEnv = (worker.Properties.Environment as { Variables: Record<string, unknown> })
      .Variables;
    const webhookEnv = (webhook.Properties.Environment as { Variables: Record<string, unknown> })
      .Variables;

    // Assess
    expect(worker.Properties).toMatchObject({
      MemorySize: 1769,
      Timeout: 120,
      EphemeralStorage: { Size: 1024 },
    });
    expect(workerEnv).toMatchObject({
      [ENV.secretPrefix]: 'pipeline-promoter/',
      [ENV.gitCacheDir]: '/tmp/git-cache',
    });
    expect(webhookEnv).toMatchObject({
      [ENV.queueUrl]: { Ref: expect.stringMatching(/JobQueue/) },
      [ENV.secretPrefix]: 'pipeline-promoter/',
    });
  });
});

describe('the HTTP API', () => {
  it('routes the webhook without an authoriser and the pipelines routes with IAM', () => {
    // Prepare
    const routes = template.findResources('AWS::ApiGatewayV2::Route') as Record<string, Resource>;

    // Act
    const authorisation = Object.fromEntries(
      Object.values(routes).map((route) => [
        route.Properties.RouteKey as string,
        route.Properties.AuthorizationType,
      ]),
    );

    // Assess
    expect(authorisation).toEqual({
      'POST /promotion/{ns}/{name}/{env}': 'NONE',
      // Weave's approval, signed with the pipeline's HMAC key (checked by the function).
      'POST /approval/{ns}/{name}/{env}/{revision}': 'NONE',
      'POST /webhooks/github': 'NONE',
      'POST /webhooks/gitlab': 'NONE',
      $default: 'NONE',
      'GET /pipelines': 'AWS_IAM',
      'PUT /pipelines': 'AWS_IAM',
      'GET /pipelines/{ns}/{name}': 'AWS_IAM',
      'POST /pipelines/{ns}/{name}/environments/{env}/approval': 'AWS_IAM',
      'POST /freeze': 'AWS_IAM',
      'POST /unfreeze': 'AWS_IAM',
      'GET /freezes': 'AWS_IAM',
    });
    template.allResourcesProperties('AWS::ApiGatewayV2::Integration', {
      IntegrationType: 'AWS_PROXY',
      PayloadFormatVersion: '2.0',
    });
  });

  it('throttles the stage, logs every request as JSON and outputs the URL', () => {
    // Prepare
    const [, stage] = only(
      template.findResources('AWS::ApiGatewayV2::Stage') as Record<string, Resource>,
    );

    // Act
    const settings = stage.Properties.AccessLogSettings as {
      Format: string;
      DestinationArn: unknown;
    };

    // Assess
    expect(stage.Properties).toMatchObject({
      StageName: '$default',
      AutoDeploy: true,
      DefaultRouteSettings: { ThrottlingRateLimit: 50, ThrottlingBurstLimit: 100 },
    });
    expect(JSON.parse(settings.Format)).toMatchObject({ requestId: '$context.requestId' });
    expect(settings.DestinationArn).toEqual({
      'Fn::GetAtt': [expect.stringMatching(/AccessLogs/), 'Arn'],
    });
    template.hasOutput('ApiUrl', { Value: Match.anyValue() });
  });
});

describe('monitoring', () => {
  it('alarms on DLQ depth, worker errors, the oldest job and dead letters, to the e-mail topic', () => {
    // Prepare
    const alarms = template.findResources('AWS::CloudWatch::Alarm') as Record<string, Resource>;
    const [topicId] = only(template.findResources('AWS::SNS::Topic') as Record<string, Resource>);

    // Act
    const metrics = Object.values(alarms)
      .filter((alarm) => alarm.Properties.MetricName !== undefined)
      .map((alarm) => `${alarm.Properties.Namespace}/${alarm.Properties.MetricName}`)
      .sort();

    // Assess
    expect(metrics).toEqual([
      'AWS/Lambda/Errors',
      'AWS/SQS/ApproximateAgeOfOldestMessage',
      'AWS/SQS/ApproximateNumberOfMessagesVisible',
    ]);
    expect(Object.keys(alarms)).toHaveLength(4);
    for (const alarm of Object.values(alarms)) {
      expect(alarm.Properties.AlarmActions).toEqual([{ Ref: topicId }]);
    }
    template.hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'email',
      Endpoint: 'platform-team@example.com',
      TopicArn: { Ref: topicId },
    });
    template.hasResourceProperties('AWS::SNS::TopicPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: 'Deny',
            Condition: { Bool: { 'aws:SecureTransport': 'false' } },
          }),
        ]),
      },
    });
  });
});

describe('the reconcile sweep', () => {
  const variablesOf = (fn: Resource) =>
    (fn.Properties.Environment as { Variables: Record<string, unknown> }).Variables;

  it('runs every 5 minutes on an EventBridge Scheduler schedule whose role may only invoke it', () => {
    // Prepare
    const [reconcileId] = functionWithService(SERVICE_NAMES.reconcile);
    const roles = template.findResources('AWS::IAM::Role') as Record<string, Resource>;

    // Act
    const [, schedule] = only(
      template.findResources('AWS::Scheduler::Schedule') as Record<string, Resource>,
    );
    const target = schedule.Properties.Target as {
      Arn: unknown;
      RoleArn: { 'Fn::GetAtt': [string, string] };
      RetryPolicy: { MaximumEventAgeInSeconds: number };
    };
    const roleId = target.RoleArn['Fn::GetAtt'][0];
    const role = roles[roleId] as Resource;
    const trust = (role.Properties.AssumeRolePolicyDocument as { Statement: Statement[] })
      .Statement;

    // Assess
    expect(schedule.Properties).toMatchObject({
      ScheduleExpression: 'rate(5 minutes)',
      State: 'ENABLED',
      FlexibleTimeWindow: { Mode: 'OFF' },
    });
    expect(target.Arn).toEqual({ 'Fn::GetAtt': [reconcileId, 'Arn'] });
    // A sweep not delivered before the next one is due is not worth delivering.
    expect(target.RetryPolicy.MaximumEventAgeInSeconds).toBe(300);
    expect(trust).toEqual([
      {
        Effect: 'Allow',
        Action: 'sts:AssumeRole',
        Principal: { Service: 'scheduler.amazonaws.com' },
        Condition: {
          StringEquals: {
            'aws:SourceAccount': { Ref: 'AWS::AccountId' },
            'aws:SourceArn': {
              'Fn::Join': [
                '',
                [
                  'arn:',
                  { Ref: 'AWS::Partition' },
                  ':scheduler:',
                  { Ref: 'AWS::Region' },
                  ':',
                  { Ref: 'AWS::AccountId' },
                  ':schedule-group/default',
                ],
              ],
            },
          },
        },
      },
    ]);
    expect(role.Properties.ManagedPolicyArns).toBeUndefined();
    expect(policyStatementsOfRole(roleId)).toEqual([
      {
        Effect: 'Allow',
        Action: 'lambda:InvokeFunction',
        Resource: { 'Fn::GetAtt': [reconcileId, 'Arn'] },
      },
    ]);
  });

  it('runs one sweep at a time, in 60 s and 512 MB, with the worker settings it reads', () => {
    // Prepare
    const [reconcileId, reconcile] = functionWithService(SERVICE_NAMES.reconcile);
    const [, worker] = functionWithService(SERVICE_NAMES.worker);

    // Act
    const reconcileEnv = variablesOf(reconcile);
    const workerEnv = variablesOf(worker);
    const [, invokeConfig] = only(
      template.findResources('AWS::Lambda::EventInvokeConfig') as Record<string, Resource>,
    );

    // Assess
    expect(reconcile.Properties).toMatchObject({
      ReservedConcurrentExecutions: 1,
      Timeout: 60,
      MemorySize: 512,
    });
    // readWorkerConfig's settings: the same as the worker's (the queue URL and the git limits
    // included), the promotion budget under its own timeout.
    const { [ENV.promotionTimeoutSeconds]: budget, ...shared } = workerEnv;
    expect(budget).toBe('90');
    expect(reconcileEnv).toMatchObject({
      ...shared,
      POWERTOOLS_SERVICE_NAME: SERVICE_NAMES.reconcile,
      [ENV.promotionTimeoutSeconds]: '45',
    });
    expect(reconcileEnv[ENV.queueUrl]).toEqual({ Ref: expect.stringMatching(/JobQueue/) });
    expect(reconcileEnv[ENV.gitMaxPackMb]).toBe('256');
    // A failed sweep is not retried: the next scheduled one does its work.
    expect(invokeConfig.Properties).toMatchObject({
      FunctionName: { Ref: reconcileId },
      MaximumRetryAttempts: 0,
      MaximumEventAgeInSeconds: 300,
    });
  });

  it('follows reconcileIntervalMinutes, and 0 leaves the function without a schedule', () => {
    // Prepare: skip bundling (these stacks are only read, never deployed).
    const synth = (reconcileIntervalMinutes: string) => {
      const app = new App({
        context: { ...cdkContext, 'aws:cdk:bundling-stacks': [], reconcileIntervalMinutes },
      });
      return Template.fromStack(
        new PipelinePromoterStack(app, 'Reconcile', settingsFromContext(app.node)),
      );
    };

    // Act
    const every15 = synth('15');
    const never = synth('0');

    // Assess
    every15.hasResourceProperties('AWS::Scheduler::Schedule', {
      ScheduleExpression: 'rate(15 minutes)',
      Target: Match.objectLike({
        RetryPolicy: Match.objectLike({ MaximumEventAgeInSeconds: 900 }),
      }),
    });
    never.resourceCountIs('AWS::Scheduler::Schedule', 0);
    // No periodic schedule's role; the gate schedules' role stays (due gates still wake it).
    never.resourcePropertiesCountIs(
      'AWS::IAM::Role',
      {
        AssumeRolePolicyDocument: Match.objectLike({
          Statement: [Match.objectLike({ Principal: { Service: 'scheduler.amazonaws.com' } })],
        }),
      },
      1,
    );
    never.resourceCountIs('AWS::Scheduler::ScheduleGroup', 1);
    never.hasResourceProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: Match.objectLike({ POWERTOOLS_SERVICE_NAME: SERVICE_NAMES.reconcile }),
      },
    });
    expect(() => parseSettings({ reconcileIntervalMinutes: '-1' })).toThrow(
      /reconcileIntervalMinutes/,
    );
    expect(parseSettings({ reconcileIntervalMinutes: '0' })).toEqual({
      reconcileIntervalMinutes: 0,
    });
  });
});

describe('the GitHub webhook', () => {
  it('is POST /webhooks/github to the webhook function, unauthorised, throttled on its own', () => {
    // Prepare
    const [webhookId] = functionWithService(SERVICE_NAMES.webhook);
    const [, route] = only(
      template.findResources('AWS::ApiGatewayV2::Route', {
        Properties: { RouteKey: `POST ${GITHUB_WEBHOOK_PATH}` },
      }) as Record<string, Resource>,
    );
    const [, stage] = only(
      template.findResources('AWS::ApiGatewayV2::Stage') as Record<string, Resource>,
    );

    // Act
    const integrationId = (
      route.Properties.Target as { 'Fn::Join': [string, [string, { Ref: string }]] }
    )['Fn::Join'][1][1].Ref;
    const integration = template.toJSON().Resources[integrationId] as Resource;
    const routeSettings = stage.Properties.RouteSettings as Record<string, unknown>;

    // Assess
    expect(ROUTES.githubWebhook).toBe(GITHUB_WEBHOOK_PATH);
    expect(route.Properties.AuthorizationType).toBe('NONE');
    expect(integration.Properties).toMatchObject({
      IntegrationType: 'AWS_PROXY',
      PayloadFormatVersion: '2.0',
      IntegrationUri: { 'Fn::GetAtt': [webhookId, 'Arn'] },
    });
    expect(routeSettings[`POST ${GITHUB_WEBHOOK_PATH}`]).toEqual({
      ThrottlingRateLimit: 10,
      ThrottlingBurstLimit: 50,
    });
    template.hasOutput('GitHubWebhookUrl', {
      Value: {
        'Fn::Join': ['', Match.arrayWith([Match.stringLikeRegexp(`${GITHUB_WEBHOOK_PATH}$`)])],
      },
    });
  });
});

describe('the GitLab webhook', () => {
  it("is POST /webhooks/gitlab to the webhook function, unauthorised, throttled like GitHub's", () => {
    // Prepare
    const [webhookId] = functionWithService(SERVICE_NAMES.webhook);
    const [, route] = only(
      template.findResources('AWS::ApiGatewayV2::Route', {
        Properties: { RouteKey: `POST ${GITLAB_WEBHOOK_PATH}` },
      }) as Record<string, Resource>,
    );
    const [, stage] = only(
      template.findResources('AWS::ApiGatewayV2::Stage') as Record<string, Resource>,
    );

    // Act
    const integrationId = (
      route.Properties.Target as { 'Fn::Join': [string, [string, { Ref: string }]] }
    )['Fn::Join'][1][1].Ref;
    const integration = template.toJSON().Resources[integrationId] as Resource;
    const routeSettings = stage.Properties.RouteSettings as Record<string, unknown>;

    // Assess
    expect(ROUTES.gitlabWebhook).toBe(GITLAB_WEBHOOK_PATH);
    expect(route.Properties.AuthorizationType).toBe('NONE');
    expect(integration.Properties).toMatchObject({
      IntegrationType: 'AWS_PROXY',
      PayloadFormatVersion: '2.0',
      IntegrationUri: { 'Fn::GetAtt': [webhookId, 'Arn'] },
    });
    expect(routeSettings[`POST ${GITLAB_WEBHOOK_PATH}`]).toEqual({
      ThrottlingRateLimit: 10,
      ThrottlingBurstLimit: 50,
    });
    expect(routeSettings[`POST ${GITLAB_WEBHOOK_PATH}`]).toEqual(
      routeSettings[`POST ${GITHUB_WEBHOOK_PATH}`],
    );
    template.hasOutput('GitLabWebhookUrl', {
      Value: {
        'Fn::Join': ['', Match.arrayWith([Match.stringLikeRegexp(`${GITLAB_WEBHOOK_PATH}$`)])],
      },
    });
  });

  it('lets the webhook function read {prefix}gitlab-webhook', () => {
    // Prepare
    const [, webhook] = functionWithService(SERVICE_NAMES.webhook);
    const variables = (webhook.Properties.Environment as { Variables: Record<string, string> })
      .Variables;
    const prefix = variables[ENV.secretPrefix] ?? '';
    const pseudo: Record<string, string> = {
      'AWS::Partition': 'aws',
      'AWS::Region': 'eu-west-1',
      'AWS::AccountId': '123456789012',
    };
    // The ARN Secrets Manager gives the secret: its name and a random suffix.
    const secretArn = `arn:aws:secretsmanager:eu-west-1:123456789012:secret:${prefix}${GITLAB_WEBHOOK_SECRET}-AbCdEf`;

    // Act: the resources of the webhook role's GetSecretValue, as ARNs of that account.
    const readable = policyStatementsOfRole(roleLogicalId(webhook))
      .filter(
        (statement) =>
          statement.Effect === 'Allow' &&
          actionsOf(statement).includes('secretsmanager:GetSecretValue'),
      )
      .flatMap(resourcesOf)
      .map((resource) =>
        (resource as { 'Fn::Join': [string, (string | { Ref: string })[]] })['Fn::Join'][1]
          .map((part) => (typeof part === 'string' ? part : (pseudo[part.Ref] ?? '?')))
          .join(''),
      );

    // Assess
    expect(prefix).toBe('pipeline-promoter/');
    expect(readable).toEqual([`arn:aws:secretsmanager:eu-west-1:123456789012:secret:${prefix}*`]);
    expect(secretArn.startsWith(readable[0]?.slice(0, -1) ?? '-')).toBe(true);
  });
});

describe('cdk-nag', () => {
  it('finds nothing unacknowledged in the AWS Solutions and Serverless packs', () => {
    // Prepare: the reports of beforeAll (cdk-nag v3 packs are validation plugins).

    // Act
    const findings = nagReports.flatMap((report) =>
      report.violations.map(
        (violation) =>
          `${violation.ruleName} at ${violation.violatingResources.map((r) => r.constructPath).join(', ')}`,
      ),
    );
    const nagAnnotations = [
      ...Annotations.fromStack(stack).findError(
        '*',
        Match.stringLikeRegexp('AwsSolutions-.*|Serverless-.*'),
      ),
      ...Annotations.fromStack(stack).findWarning(
        '*',
        Match.stringLikeRegexp('AwsSolutions-.*|Serverless-.*'),
      ),
    ];

    // Assess
    expect(findings).toEqual([]);
    expect(nagReports.every((report) => report.success)).toBe(true);
    expect(nagAnnotations).toEqual([]);
    expect(Annotations.fromStack(stack).findError('*', Match.anyValue())).toEqual([]);
  });
});

describe('settings', () => {
  it('reads command-line context strings and checks them', () => {
    // Prepare
    const fromCommandLine = {
      throttlingRateLimit: '20',
      throttlingBurstLimit: '40',
      logRetentionDays: '90',
      removalPolicy: 'DESTROY',
      tracing: 'false',
      alarmEmail: '',
      promotingReasons: 'UpgradeSucceeded, InstallSucceeded',
    };

    // Act
    const settings = parseSettings(fromCommandLine);

    // Assess
    expect(settings).toEqual({
      throttlingRateLimit: 20,
      throttlingBurstLimit: 40,
      logRetentionDays: 90,
      removalPolicy: 'destroy',
      tracing: false,
      promotingReasons: ['UpgradeSucceeded', 'InstallSucceeded'],
    });
    expect(() => parseSettings({ logRetentionDays: '31', workerBatchSize: '11' })).toThrow(
      /logRetentionDays: .*retention values.*; workerBatchSize/,
    );
    expect(() => parseSettings({ alarmEmail: 'not-an-address' })).toThrow(/alarmEmail/);
  });

  it('builds no SNS topic without an alarm e-mail and honours the settings', () => {
    // Prepare: skip bundling (this stack is only read, never deployed).
    const app = new App({ context: { ...cdkContext, 'aws:cdk:bundling-stacks': [] } });

    // Act
    const other = Template.fromStack(
      new PipelinePromoterStack(app, 'Other', {
        removalPolicy: RemovalPolicy.DESTROY,
        workerTimeoutSeconds: 300,
        tracing: true,
        secretPrefix: 'promoter/',
      }),
    );

    // Assess
    other.resourceCountIs('AWS::SNS::Topic', 0);
    other.hasResourceProperties('AWS::SQS::Queue', { VisibilityTimeout: 1800 });
    other.hasResource('AWS::DynamoDB::Table', {
      DeletionPolicy: 'Delete',
      Properties: Match.objectLike({ DeletionProtectionEnabled: false }),
    });
    other.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Action: 'secretsmanager:GetSecretValue',
            Resource: { 'Fn::Join': ['', Match.arrayWith([':secret:promoter/*'])] },
          }),
        ]),
      },
    });
    for (const fn of Object.values(other.findResources('AWS::Lambda::Function'))) {
      expect((fn as Resource).Properties.TracingConfig).toEqual({ Mode: 'Active' });
    }
  });
});
