import { Lazy, type RemovalPolicy, Validations } from 'aws-cdk-lib';
import { AccessLogFormat } from 'aws-cdk-lib/aws-apigateway';
import {
  type CfnRoute,
  type CfnStage,
  HttpApi,
  HttpMethod,
  HttpRoute,
  HttpRouteKey,
  HttpStage,
  LogGroupLogDestination,
  type ThrottleSettings,
} from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpIamAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';

/** The routes (contract: DESIGN.md section 5 and the pipelines sync). */
export const ROUTES = {
  promotion: '/promotion/{ns}/{name}/{env}',
  pipelines: '/pipelines',
  pipeline: '/pipelines/{ns}/{name}',
  /** GitHub's `pull_request` webhook (functions/core/github-webhook.ts `GITHUB_WEBHOOK_PATH`). */
  githubWebhook: '/webhooks/github',
  /** GitLab's merge request webhook (functions/core/gitlab-webhook.ts `GITLAB_WEBHOOK_PATH`). */
  gitlabWebhook: '/webhooks/gitlab',
  /** Weave's signed approval (functions/core/approval-webhook.ts). */
  approval: '/approval/{ns}/{name}/{env}/{revision}',
  /** The IAM approval and freezes (functions/core/gate-controls.ts). */
  environmentApproval: '/pipelines/{ns}/{name}/environments/{env}/approval',
  freeze: '/freeze',
  unfreeze: '/unfreeze',
  freezes: '/freezes',
} as const;

/**
 * Each route key has its own token bucket, so a flood of unsigned requests on the webhook
 * routes is throttled there and `promoter sync`, `status` and approvals keep their budget.
 * Flux sends one event per deployment (and up to 4 retries): 50/s is far above a fleet's rate.
 * The IAM routes serve a sync every few minutes per management cluster and people's commands.
 */
export const API_DEFAULTS = {
  throttlingRateLimit: 50,
  throttlingBurstLimit: 100,
  webhookThrottlingRateLimit: 50,
  webhookThrottlingBurstLimit: 100,
  iamRoutesThrottlingRateLimit: 10,
  iamRoutesThrottlingBurstLimit: 20,
  // GitHub delivers once per PR event and never retries a refused delivery by itself: the
  // reconcile sweep catches up with any it loses, so its own small bucket is enough. GitLab's
  // merge request webhook gets a bucket of the same size.
  githubWebhookThrottlingRateLimit: 10,
  githubWebhookThrottlingBurstLimit: 50,
} as const;

export interface PromoterApiProps {
  readonly webhook: IFunction;
  readonly pipelinesApi: IFunction;
  /** The stage's default: steady-state requests per second of a route without its own. @default 50 */
  readonly throttlingRateLimit?: number;
  /** The stage's default burst of a route without its own. @default 100 */
  readonly throttlingBurstLimit?: number;
  /** The webhook routes (`POST /promotion/...` and `$default`), each. @default 50/s, burst 100 */
  readonly webhookThrottle?: ThrottleSettings;
  /** The IAM routes (sync, status, approvals), each. @default 10/s, burst 20 */
  readonly iamRoutesThrottle?: ThrottleSettings;
  /** `POST /webhooks/github` and `POST /webhooks/gitlab`, each. @default 10/s, burst 50 */
  readonly githubWebhookThrottle?: ThrottleSettings;
  readonly logRetention: logs.RetentionDays;
  readonly logRemovalPolicy: RemovalPolicy;
}

/** One JSON line per request (the HTTP API `$context` variables). */
const ACCESS_LOG_FIELDS = {
  requestId: '$context.requestId',
  requestTime: '$context.requestTime',
  ip: '$context.identity.sourceIp',
  userAgent: '$context.identity.userAgent',
  caller: '$context.identity.userArn',
  httpMethod: '$context.httpMethod',
  routeKey: '$context.routeKey',
  path: '$context.path',
  protocol: '$context.protocol',
  status: '$context.status',
  responseLength: '$context.responseLength',
  responseLatency: '$context.responseLatency',
  integrationStatus: '$context.integrationStatus',
  integrationLatency: '$context.integrationLatency',
  integrationError: '$context.integrationErrorMessage',
  error: '$context.error.message',
} as const;

/**
 * The HTTP API (API Gateway v2, Lambda proxy payload 2.0, the raw body passed through):
 * - `POST /promotion/{ns}/{name}/{env}`: Flux's generic-hmac webhook. No API Gateway
 *   authoriser: the function verifies the HMAC of the raw body before anything else.
 * - `$default`: every other request goes to the webhook function, which answers the contract's
 *   405 or 404 with a JSON body (API Gateway's own 404 would not be).
 * - `POST /webhooks/github`: GitHub's `pull_request` webhook, to the webhook function. No
 *   authoriser either: the function verifies `X-Hub-Signature-256` before parsing.
 * - `POST /webhooks/gitlab`: GitLab's merge request webhook, to the webhook function, throttled
 *   like GitHub's. No authoriser: the function checks `X-Gitlab-Token` before parsing.
 * - `PUT /pipelines` and `GET /pipelines/{ns}/{name}`: the pipeline sync, IAM-authorised
 *   (SigV4; the caller needs `execute-api:Invoke` on them).
 * The `$default` stage has JSON access logs in their own log group and throttles each route
 * apart (`throttleRoute`): the webhook routes with `webhookThrottle`, the IAM routes with
 * `iamRoutesThrottle`, any other route with the stage default.
 */
export class PromoterApi extends Construct {
  public readonly httpApi: HttpApi;
  public readonly stage: HttpStage;
  public readonly accessLogGroup: logs.LogGroup;
  public readonly webhookRoutes: HttpRoute[];
  /** `POST /webhooks/github`, to the webhook function. */
  public readonly githubWebhookRoutes: HttpRoute[];
  /** `POST /webhooks/gitlab`, to the webhook function. */
  public readonly gitlabWebhookRoutes: HttpRoute[];
  public readonly pipelinesRoutes: HttpRoute[];
  /** The API's base URL, ending with `/`. */
  public readonly url: string;
  /** The limits of each route throttled apart, by route key (the stage's `RouteSettings`). */
  public readonly routeThrottles = new Map<string, ThrottleSettings>();
  private readonly webhookThrottle: ThrottleSettings;
  private readonly iamRoutesThrottle: ThrottleSettings;

  constructor(scope: Construct, id: string, props: PromoterApiProps) {
    super(scope, id);

    this.httpApi = new HttpApi(this, 'HttpApi', {
      description: 'Pipeline Promoter: Flux webhooks and pipeline sync',
      createDefaultStage: false,
    });

    this.accessLogGroup = new logs.LogGroup(this, 'AccessLogs', {
      retention: props.logRetention,
      removalPolicy: props.logRemovalPolicy,
    });
    this.stage = new HttpStage(this, 'DefaultStage', {
      httpApi: this.httpApi,
      stageName: '$default',
      autoDeploy: true,
      throttle: {
        rateLimit: props.throttlingRateLimit ?? API_DEFAULTS.throttlingRateLimit,
        burstLimit: props.throttlingBurstLimit ?? API_DEFAULTS.throttlingBurstLimit,
      },
      accessLogSettings: {
        destination: new LogGroupLogDestination(this.accessLogGroup),
        format: AccessLogFormat.custom(JSON.stringify(ACCESS_LOG_FIELDS)),
      },
    });
    this.url = this.stage.url;
    // HttpStage has no route settings: they are the CfnStage's, read when the template is made,
    // so routes added after this constructor (by throttleRoute) are in them.
    (this.stage.node.defaultChild as CfnStage).routeSettings = Lazy.any({
      produce: () =>
        this.routeThrottles.size === 0
          ? undefined
          : Object.fromEntries(
              [...this.routeThrottles].map(([routeKey, limits]) => [
                routeKey,
                // A free-form map to the CDK: written as CloudFormation spells the keys.
                {
                  ...(limits.rateLimit === undefined
                    ? {}
                    : { ThrottlingRateLimit: limits.rateLimit }),
                  ...(limits.burstLimit === undefined
                    ? {}
                    : { ThrottlingBurstLimit: limits.burstLimit }),
                },
              ]),
            ),
    });
    this.webhookThrottle = {
      rateLimit: props.webhookThrottle?.rateLimit ?? API_DEFAULTS.webhookThrottlingRateLimit,
      burstLimit: props.webhookThrottle?.burstLimit ?? API_DEFAULTS.webhookThrottlingBurstLimit,
    };
    this.iamRoutesThrottle = {
      rateLimit: props.iamRoutesThrottle?.rateLimit ?? API_DEFAULTS.iamRoutesThrottlingRateLimit,
      burstLimit: props.iamRoutesThrottle?.burstLimit ?? API_DEFAULTS.iamRoutesThrottlingBurstLimit,
    };

    // The integrations add the lambda:InvokeFunction permissions, scoped to this API's routes.
    const webhookIntegration = new HttpLambdaIntegration('Webhook', props.webhook);
    this.webhookRoutes = [
      ...this.httpApi.addRoutes({
        path: ROUTES.promotion,
        methods: [HttpMethod.POST],
        integration: webhookIntegration,
      }),
      ...this.httpApi.addRoutes({
        path: ROUTES.approval,
        methods: [HttpMethod.POST],
        integration: webhookIntegration,
      }),
      // Every other request (another method on the webhook path, an unknown path) reaches the
      // webhook function too, for the contract's answers: 405 and 404 with {"error": ...}.
      new HttpRoute(this, 'DefaultRoute', {
        httpApi: this.httpApi,
        routeKey: HttpRouteKey.DEFAULT,
        integration: webhookIntegration,
      }),
    ];
    for (const route of this.webhookRoutes) {
      this.throttleRoute(route, this.webhookThrottle);
      Validations.of(route).acknowledge({
        id: 'AwsSolutions-APIG4',
        reason:
          "Flux's generic-hmac Provider authenticates with an HMAC of the raw body in X-Signature, which no API Gateway authoriser can check (authorisers do not see the body). The webhook function verifies it, constant-time, before it reads or records anything, and answers 401 otherwise; the webhook routes' own throttling bounds the cost of unsigned requests and leaves the IAM routes their budget.",
      });
    }

    // GitHub's webhook, to the same function (it would reach it through `$default` too): its own
    // route for its own throttle and access log route key.
    this.githubWebhookRoutes = this.httpApi.addRoutes({
      path: ROUTES.githubWebhook,
      methods: [HttpMethod.POST],
      integration: webhookIntegration,
    });
    const pullRequestWebhookThrottle = {
      rateLimit:
        props.githubWebhookThrottle?.rateLimit ?? API_DEFAULTS.githubWebhookThrottlingRateLimit,
      burstLimit:
        props.githubWebhookThrottle?.burstLimit ?? API_DEFAULTS.githubWebhookThrottlingBurstLimit,
    };
    for (const route of this.githubWebhookRoutes) {
      this.throttleRoute(route, pullRequestWebhookThrottle);
      Validations.of(route).acknowledge({
        id: 'AwsSolutions-APIG4',
        reason:
          'GitHub authenticates its webhook deliveries with X-Hub-Signature-256, an HMAC of the raw body with the webhook secret, which no API Gateway authoriser can check (authorisers do not see the body). The webhook function verifies it, constant-time, before it parses or records anything, and answers 401 otherwise; the route has its own throttle.',
      });
    }

    // GitLab's merge request webhook, alike: its own route, throttle and access log route key.
    this.gitlabWebhookRoutes = this.httpApi.addRoutes({
      path: ROUTES.gitlabWebhook,
      methods: [HttpMethod.POST],
      integration: webhookIntegration,
    });
    for (const route of this.gitlabWebhookRoutes) {
      this.throttleRoute(route, pullRequestWebhookThrottle);
      Validations.of(route).acknowledge({
        id: 'AwsSolutions-APIG4',
        reason:
          "GitLab authenticates its webhook deliveries with the webhook's secret token in X-Gitlab-Token. The webhook function compares it, constant-time, with the secret {secretPrefix}gitlab-webhook before it parses or records anything, and answers 401 otherwise (a Lambda authoriser would be a second function reading the same secret, for no more protection); the route has its own throttle.",
      });
    }

    const pipelinesIntegration = new HttpLambdaIntegration('Pipelines', props.pipelinesApi);
    const iamAuthorizer = new HttpIamAuthorizer();
    this.pipelinesRoutes = [
      ...this.httpApi.addRoutes({
        path: ROUTES.pipelines,
        methods: [HttpMethod.GET, HttpMethod.PUT],
        integration: pipelinesIntegration,
        authorizer: iamAuthorizer,
      }),
      ...[ROUTES.pipeline, ROUTES.freezes].flatMap((path) =>
        this.httpApi.addRoutes({
          path,
          methods: [HttpMethod.GET],
          integration: pipelinesIntegration,
          authorizer: iamAuthorizer,
        }),
      ),
      ...[ROUTES.environmentApproval, ROUTES.freeze, ROUTES.unfreeze].flatMap((path) =>
        this.httpApi.addRoutes({
          path,
          methods: [HttpMethod.POST],
          integration: pipelinesIntegration,
          authorizer: iamAuthorizer,
        }),
      ),
    ];
    for (const route of this.pipelinesRoutes) this.throttleIamRoute(route);
  }

  /** Throttles a route of this API apart from the others, with its own token bucket. */
  throttleRoute(route: HttpRoute, limits: ThrottleSettings): void {
    const cfnRoute = route.node.defaultChild as CfnRoute;
    this.routeThrottles.set(cfnRoute.routeKey, limits);
    // CloudFormation refuses route settings for a route key that does not exist yet.
    this.stage.node.addDependency(cfnRoute);
  }

  /** Throttles an IAM-authorised route (sync, status, approvals) with their limits. */
  throttleIamRoute(route: HttpRoute): void {
    this.throttleRoute(route, this.iamRoutesThrottle);
  }
}
