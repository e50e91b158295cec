import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Duration, type RemovalPolicy, type Size, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { METRICS_NAMESPACE } from '../../functions/core/metric-names.ts';

/** The repository root: where package.json, package-lock.json and functions/ are. */
export const PROJECT_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** A handler file of functions/handlers, as an absolute path. */
export const handlerEntry = (fileName: string): string =>
  path.join(PROJECT_ROOT, 'functions', 'handlers', fileName);

/**
 * esbuild's ESM output has no `require`; CommonJS dependencies bundled into it (and the
 * `__require` shim esbuild writes for them) need one. The aliased import cannot collide with an
 * `import { createRequire }` of the bundled code.
 */
export const ESM_REQUIRE_BANNER =
  "import { createRequire as __promoterCreateRequire } from 'node:module'; const require = __promoterCreateRequire(import.meta.url);";

export interface PromoterFunctionProps {
  /** The handler file (exports `handler`). */
  readonly entry: string;
  readonly description: string;
  /** `POWERTOOLS_SERVICE_NAME`: the `service` of its logs and the `service` metric dimension. */
  readonly serviceName: string;
  readonly memorySize: number;
  readonly timeout: Duration;
  /** @default 512 MiB (Lambda's default) */
  readonly ephemeralStorageSize?: Size;
  /** The function's own settings (functions/config.ts `ENV`). */
  readonly environment: Readonly<Record<string, string>>;
  readonly logRetention: logs.RetentionDays;
  readonly logRemovalPolicy: RemovalPolicy;
  /** X-Ray active tracing. */
  readonly tracing: boolean;
  /** Concurrent executions reserved for (and the most allowed to) the function. @default none */
  readonly reservedConcurrentExecutions?: number;
  /**
   * Why the function needs no dead-letter queue (cdk-nag Serverless-LambdaDLQ).
   * @default it is invoked synchronously or by an SQS event source mapping
   */
  readonly deadLetterQueueReason?: string;
}

/**
 * One of the service's functions, with the settings they all share: Node.js 22 on arm64,
 * bundled offline by the local esbuild into minified ESM with source maps, its own role (no
 * managed policy: it may write to its own log group and nothing else until its owner grants
 * more), its own log group with a retention, Powertools settings.
 */
export class PromoterFunction extends Construct {
  public readonly function: NodejsFunction;
  public readonly role: iam.Role;
  public readonly logGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: PromoterFunctionProps) {
    super(scope, id);

    this.logGroup = new logs.LogGroup(this, 'LogGroup', {
      retention: props.logRetention,
      removalPolicy: props.logRemovalPolicy,
    });

    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `${props.description}: execution role`,
    });
    // The function writes its logs (and its EMF metrics) to its own log group, and nowhere else.
    this.logGroup.grantWrite(this.role);

    this.function = new NodejsFunction(this, 'Function', {
      entry: props.entry,
      handler: 'handler',
      description: props.description,
      projectRoot: PROJECT_ROOT,
      depsLockFilePath: path.join(PROJECT_ROOT, 'package-lock.json'),
      runtime: lambda.Runtime.NODEJS_22_X,
      architecture: lambda.Architecture.ARM_64,
      memorySize: props.memorySize,
      timeout: props.timeout,
      ...(props.ephemeralStorageSize === undefined
        ? {}
        : { ephemeralStorageSize: props.ephemeralStorageSize }),
      ...(props.reservedConcurrentExecutions === undefined
        ? {}
        : { reservedConcurrentExecutions: props.reservedConcurrentExecutions }),
      role: this.role,
      logGroup: this.logGroup,
      tracing: props.tracing ? lambda.Tracing.ACTIVE : lambda.Tracing.DISABLED,
      environment: {
        NODE_OPTIONS: '--enable-source-maps',
        POWERTOOLS_SERVICE_NAME: props.serviceName,
        POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
        ...props.environment,
      },
      bundling: {
        forceDockerBundling: false,
        format: OutputFormat.ESM,
        target: 'node22',
        mainFields: ['module', 'main'],
        banner: ESM_REQUIRE_BANNER,
        minify: true,
        sourceMap: true,
        sourcesContent: false,
        // Everything, the AWS SDK included, is bundled: the versions are package-lock.json's,
        // not whatever the runtime ships.
        externalModules: [],
      },
    });

    const runtimeReason =
      'Pinned to nodejs22.x, the runtime the design specifies and the one the tests run on (the `node` 22 devDependency of package.json); moving to nodejs24.x is a deliberate, tested change.';
    Validations.of(this.function).acknowledge(
      { id: 'AwsSolutions-L1', reason: runtimeReason },
      { id: 'Serverless-LambdaLatestVersion', reason: runtimeReason },
      {
        id: 'Serverless-LambdaDLQ',
        reason:
          props.deadLetterQueueReason ??
          'A function dead-letter queue only catches asynchronous invocations; this function is invoked synchronously (API Gateway) or by an SQS event source mapping, whose failing messages go to the dead-letter queue of the job queue redrive policy.',
      },
    );
    if (props.tracing) {
      Validations.of(this.role).acknowledge({
        id: 'AwsSolutions-IAM5[Resource::*]',
        reason:
          'Only xray:PutTraceSegments and xray:PutTelemetryRecords (added by Lambda active tracing) have Resource "*": X-Ray supports no resource-level permissions for them.',
      });
    } else {
      Validations.of(this.function).acknowledge({
        id: 'Serverless-LambdaTracing',
        reason:
          "X-Ray tracing is off by default (stack setting `tracing`, on with `tracing: true`): Lambda's sampling (1 request a second, then 5 %) cannot be lowered by a sampling rule and would trace nearly every request at this traffic, about $5 a million. Errors stay visible without it: the functions' Errors metric and alarm, PromotionsFailed, the dead-letter alarms, and each failure's code in the logs.",
      });
    }
  }
}
