import { readFileSync } from 'node:fs';
import { App, Validations } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import type { PolicyValidationPluginReport } from 'aws-cdk-lib/core';
import { AwsSolutionsChecks, ServerlessChecks } from 'cdk-nag';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  ENV,
  readPipelinesApiConfig,
  readWebhookConfig,
  readWorkerConfig,
} from '../../functions/config.ts';
import { SERVICE_NAMES } from '../../lib/constructs/promoter-functions.ts';
import { FAILED_PROMOTIONS_EVENT_PATTERN } from '../../lib/constructs/promotion-events.ts';
import { PipelinePromoterStack, settingsFromContext } from '../../lib/pipeline-promoter-stack.ts';
import { caught } from '../support/caught.ts';

/**
 * The event bus of promotion notices (DESIGN.md section 13): the bus, its name in the functions
 * that announce, `events:PutEvents` on it for them only, the example rule users copy, the
 * outputs. Synthesised once from cdk.json's context without bundling (the template is only
 * read), with both cdk-nag packs.
 */
const cdkContext = (
  JSON.parse(readFileSync(new URL('../../cdk.json', import.meta.url), 'utf8')) as {
    context: Record<string, unknown>;
  }
).context;

type Resource = { Type: string; Properties: Record<string, unknown> };
type Statement = {
  Effect: string;
  Action: string | string[];
  Resource: unknown;
  Principal?: unknown;
};

const ANNOUNCING = [
  SERVICE_NAMES.webhook,
  SERVICE_NAMES.worker,
  SERVICE_NAMES.pipelinesApi,
  SERVICE_NAMES.reconcile,
];

let template: Template;
let nagReports: PolicyValidationPluginReport[];

beforeAll(() => {
  const app = new App({ context: { ...cdkContext, 'aws:cdk:bundling-stacks': [] } });
  const packs = [new AwsSolutionsChecks(app), new ServerlessChecks(app)];
  Validations.of(app).addPlugins(...packs);
  const stack = new PipelinePromoterStack(app, 'Events', settingsFromContext(app.node));
  template = Template.fromStack(stack);
  nagReports = packs.map((pack) => pack.validateScope(app));
}, 120_000);

const only = (resources: Record<string, unknown>): [string, Resource] => {
  const entries = Object.entries(resources);
  expect(entries).toHaveLength(1);
  return entries[0] as [string, Resource];
};
const actionsOf = (statement: Statement): string[] =>
  Array.isArray(statement.Action) ? statement.Action : [statement.Action];
const busId = (): string => only(template.findResources('AWS::Events::EventBus'))[0];
const functionWithService = (service: string): Resource =>
  only(
    template.findResources('AWS::Lambda::Function', {
      Properties: {
        Environment: { Variables: Match.objectLike({ POWERTOOLS_SERVICE_NAME: service }) },
      },
    }),
  )[1];
const roleOf = (fn: Resource): string =>
  ((fn.Properties.Role as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'] ?? [])[0];
/** Every statement that names `events:PutEvents`, with the roles of its policy. */
const putEventsGrants = (): { roles: unknown[]; statement: Statement }[] =>
  Object.values(template.findResources('AWS::IAM::Policy') as Record<string, Resource>).flatMap(
    (policy) =>
      (policy.Properties.PolicyDocument as { Statement: Statement[] }).Statement.filter(
        (statement) => actionsOf(statement).some((action) => action.startsWith('events:')),
      ).map((statement) => ({ roles: policy.Properties.Roles as unknown[], statement })),
  );

/** The log group whose name starts with `/aws/events/` (EventBridge's prefix for targets). */
const failedPromotionsLogGroup = (): [string, Resource] =>
  only(
    Object.fromEntries(
      Object.entries(template.findResources('AWS::Logs::LogGroup')).filter(([, group]) =>
        JSON.stringify((group as Resource).Properties.LogGroupName ?? '').includes('/aws/events/'),
      ),
    ),
  );

describe('the event bus of promotion notices', () => {
  it('is one custom bus, named and pointed to in the outputs', () => {
    // Prepare
    const id = busId();

    // Act
    const outputs = template.toJSON().Outputs as Record<string, { Value: unknown }>;

    // Assess
    expect(outputs.EventBusName?.Value).toEqual({ Ref: id });
    expect(outputs.EventBusArn?.Value).toEqual({ 'Fn::GetAtt': [id, 'Arn'] });
  });

  it('is named in the environment of the four functions that announce', () => {
    // Prepare
    const id = busId();

    // Act
    const names = ANNOUNCING.map(
      (service) =>
        (
          functionWithService(service).Properties.Environment as {
            Variables: Record<string, unknown>;
          }
        ).Variables[ENV.eventBusName],
    );

    // Assess
    expect(names).toEqual(ANNOUNCING.map(() => ({ Ref: id })));
  });

  it('grants events:PutEvents on that bus only, to those functions only', () => {
    // Prepare
    const busArn = { 'Fn::GetAtt': [busId(), 'Arn'] };
    const roles = ANNOUNCING.map((service) => ({ Ref: roleOf(functionWithService(service)) }));

    // Act
    const grants = putEventsGrants();

    // Assess
    expect(grants.map(({ statement }) => statement)).toEqual(
      ANNOUNCING.map(() => ({ Effect: 'Allow', Action: 'events:PutEvents', Resource: busArn })),
    );
    expect(grants.flatMap((grant) => grant.roles)).toEqual(expect.arrayContaining(roles));
    expect(grants.flatMap((grant) => grant.roles)).toHaveLength(roles.length);
  });
});

describe('the example rule', () => {
  it('sends failed and dead-lettered promotions on the bus to its log group', () => {
    // Prepare
    const id = busId();
    const [groupId, group] = failedPromotionsLogGroup();

    // Act
    const [, rule] = only(template.findResources('AWS::Events::Rule'));

    // Assess
    expect(rule.Properties).toMatchObject({
      EventBusName: { Ref: id },
      State: 'ENABLED',
      EventPattern: FAILED_PROMOTIONS_EVENT_PATTERN,
    });
    expect(FAILED_PROMOTIONS_EVENT_PATTERN).toEqual({
      source: ['pipeline-promoter'],
      'detail-type': ['Promotion State Change'],
      detail: { state: ['failed', 'dead-lettered'] },
    });
    const targets = rule.Properties.Targets as { Arn: unknown; RoleArn?: unknown }[];
    expect(targets).toHaveLength(1);
    // The group's ARN, without the `:*` of its streams; a log group target takes no role.
    expect(JSON.stringify(targets[0]?.Arn)).toContain(`{"Ref":"${groupId}"}`);
    expect(JSON.stringify(targets[0]?.Arn)).not.toContain(':*');
    expect(targets[0]?.RoleArn).toBeUndefined();
    expect(group.Properties.RetentionInDays).toBe(cdkContext.logRetentionDays ?? 30);
    // Named under EventBridge's prefix, unique to this stack instance (a retained group of a
    // deleted stack of the same name does not block it).
    const name = JSON.stringify(group.Properties.LogGroupName);
    expect(name).toContain('/aws/events/Events/failed-promotions-');
    expect(name).toContain('AWS::StackId');
  });

  it('lets EventBridge write to that log group and no other', () => {
    // Prepare
    const [groupId] = failedPromotionsLogGroup();

    // Act: the document is a Fn::Join of JSON around the group's ARN; put a marker in its place.
    const [, policy] = only(template.findResources('AWS::Logs::ResourcePolicy'));
    const [, parts] = (policy.Properties.PolicyDocument as { 'Fn::Join': [string, unknown[]] })[
      'Fn::Join'
    ];
    const document = JSON.parse(
      parts
        .map((part) =>
          typeof part === 'string'
            ? part
            : JSON.stringify(part) === JSON.stringify({ 'Fn::GetAtt': [groupId, 'Arn'] })
              ? 'GROUP_ARN'
              : 'SOMETHING_ELSE',
        )
        .join(''),
    ) as { Statement: Statement[] };

    // Assess
    expect(document.Statement).toEqual([
      {
        Effect: 'Allow',
        Principal: { Service: 'events.amazonaws.com' },
        Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        Resource: 'GROUP_ARN',
      },
    ]);
  });
});

describe('cdk-nag on the bus and its rule', () => {
  it('finds nothing unacknowledged', () => {
    // Act
    const findings = nagReports.flatMap((report) =>
      report.violations.map(
        (violation) =>
          `${violation.ruleName} at ${violation.violatingResources.map((r) => r.constructPath).join(', ')}`,
      ),
    );

    // Assess
    expect(findings).toEqual([]);
  });
});

describe('the functions read the bus name', () => {
  const minimal = {
    [ENV.tableName]: 'pipeline-promoter',
    [ENV.queueUrl]: 'https://sqs.eu-west-1.amazonaws.com/123456789012/jobs.fifo',
  };

  it('as given, and as absent (no notices) when unset', () => {
    // Prepare
    const withBus = { ...minimal, [ENV.eventBusName]: 'Events-EventsBus1234' };

    // Act
    const read = [readWorkerConfig, readWebhookConfig, readPipelinesApiConfig].map((reader) => [
      reader(withBus)[ENV.eventBusName],
      reader(minimal)[ENV.eventBusName],
    ]);

    // Assess
    expect(read).toEqual([
      ['Events-EventsBus1234', undefined],
      ['Events-EventsBus1234', undefined],
      ['Events-EventsBus1234', undefined],
    ]);
  });

  it('refuses an empty one, naming the variable', async () => {
    // Act
    const error = await caught(
      (async () => readWorkerConfig({ ...minimal, [ENV.eventBusName]: '' }))(),
    );

    // Assess
    expect(error.code).toBe('INVALID_CONFIG');
    expect(error.message).toContain(ENV.eventBusName);
    expect(error.message).toContain('expected the EventBridge event bus name or ARN');
  });
});

describe('the one-time schedules of due gates', () => {
  const SCHEDULING = [SERVICE_NAMES.webhook, SERVICE_NAMES.pipelinesApi, SERVICE_NAMES.reconcile];
  const groupId = (): string => only(template.findResources('AWS::Scheduler::ScheduleGroup'))[0];
  const gateRole = (): [string, Resource] =>
    only(
      Object.fromEntries(
        Object.entries(template.findResources('AWS::IAM::Role')).filter(([, role]) =>
          JSON.stringify(role).includes(groupId()),
        ),
      ),
    );
  const reconcileId = (): string =>
    only(
      template.findResources('AWS::Lambda::Function', {
        Properties: {
          Environment: {
            Variables: Match.objectLike({ POWERTOOLS_SERVICE_NAME: SERVICE_NAMES.reconcile }),
          },
        },
      }),
    )[0];
  const statementsOf = (service: string): Statement[] => {
    const role = roleOf(functionWithService(service));
    return Object.values(template.findResources('AWS::IAM::Policy') as Record<string, Resource>)
      .filter((policy) => JSON.stringify(policy.Properties.Roles).includes(role))
      .flatMap(
        (policy) => (policy.Properties.PolicyDocument as { Statement: Statement[] }).Statement,
      );
  };

  it('invoke the reconcile function as a role for this group only', () => {
    // Prepare
    const reconcile = reconcileId();

    // Act
    const [roleId, role] = gateRole();
    const policies = Object.values(
      template.findResources('AWS::IAM::Policy') as Record<string, Resource>,
    ).filter(
      (policy) => JSON.stringify(policy.Properties.Roles) === JSON.stringify([{ Ref: roleId }]),
    );

    // Assess
    expect(role.Properties.AssumeRolePolicyDocument).toMatchObject({
      Statement: [
        {
          Principal: { Service: 'scheduler.amazonaws.com' },
          Condition: {
            StringEquals: { 'aws:SourceArn': { 'Fn::GetAtt': [groupId(), 'Arn'] } },
          },
        },
      ],
    });
    expect(
      policies.flatMap(
        (policy) => (policy.Properties.PolicyDocument as { Statement: Statement[] }).Statement,
      ),
    ).toEqual([
      {
        Effect: 'Allow',
        Action: 'lambda:InvokeFunction',
        Resource: { 'Fn::GetAtt': [reconcile, 'Arn'] },
      },
    ]);
  });

  it('are put by the webhook, the pipelines API and the sweep only, in the group, passing that role', () => {
    // Prepare: the group's name is the stack's and the construct's (a hash of its path).
    const [roleId] = gateRole();
    const groupName = only(template.findResources('AWS::Scheduler::ScheduleGroup'))[1].Properties
      .Name as string;
    expect(groupName).toMatch(/^Events-GateSchedules-[0-9A-F]{8}$/);

    // Act
    const scheduling = [...SCHEDULING, SERVICE_NAMES.worker].map((service) => {
      const statements = statementsOf(service);
      const variables = (
        functionWithService(service).Properties.Environment as {
          Variables: Record<string, unknown>;
        }
      ).Variables;
      return {
        create: statements.filter((statement) =>
          actionsOf(statement).includes('scheduler:CreateSchedule'),
        ),
        pass: statements.filter((statement) => actionsOf(statement).includes('iam:PassRole')),
        group: variables[ENV.gateScheduleGroup],
        role: variables[ENV.gateScheduleRoleArn],
        target: variables[ENV.gateScheduleTargetArn],
      };
    });

    // Assess
    const [webhook, pipelinesApi, reconcile, worker] = scheduling;
    for (const granted of [webhook, pipelinesApi, reconcile]) {
      if (granted === undefined) throw new Error('a function is missing');
      expect(granted.create).toHaveLength(1);
      expect(JSON.stringify(granted.create[0]?.Resource)).toContain(`:schedule/${groupName}/*`);
      expect(granted.pass).toEqual([
        expect.objectContaining({
          Resource: { 'Fn::GetAtt': [roleId, 'Arn'] },
          Condition: { StringEquals: { 'iam:PassedToService': 'scheduler.amazonaws.com' } },
        }),
      ]);
      expect(granted.group).toBe(groupName);
      expect(granted.role).toEqual({ 'Fn::GetAtt': [roleId, 'Arn'] });
    }
    // The reconcile function has its own ARN from each invocation (in its environment: a cycle).
    const reconcileArn = { 'Fn::GetAtt': [reconcileId(), 'Arn'] };
    expect([webhook?.target, pipelinesApi?.target, reconcile?.target]).toEqual([
      reconcileArn,
      reconcileArn,
      undefined,
    ]);
    expect(worker).toEqual({
      create: [],
      pass: [],
      group: undefined,
      role: undefined,
      target: undefined,
    });
  });
});
