import { type RemovalPolicy, Validations } from 'aws-cdk-lib';
import { AccessLogFormat } from 'aws-cdk-lib/aws-apigateway';
import {
  HttpApi,
  HttpMethod,
  HttpRoute,
  HttpRouteKey,
  HttpStage,
  LogGroupLogDestination,
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
} as const;

export const API_DEFAULTS = {
  throttlingRateLimit: 50,
  throttlingBurstLimit: 100,
} as const;

export interface PromoterApiProps {
  readonly webhook: IFunction;
  readonly pipelinesApi: IFunction;
  /** Steady-state requests per second over all routes. @default 50 */
  readonly throttlingRateLimit?: number;
  /** Burst of requests over all routes. @default 100 */
  readonly throttlingBurstLimit?: number;
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
 * - `PUT /pipelines` and `GET /pipelines/{ns}/{name}`: the pipeline sync, IAM-authorised
 *   (SigV4; the caller needs `execute-api:Invoke` on them).
 * The `$default` stage has throttling and JSON access logs in their own log group.
 */
export class PromoterApi extends Construct {
  public readonly httpApi: HttpApi;
  public readonly stage: HttpStage;
  public readonly accessLogGroup: logs.LogGroup;
  public readonly webhookRoutes: HttpRoute[];
  public readonly pipelinesRoutes: HttpRoute[];
  /** The API's base URL, ending with `/`. */
  public readonly url: string;

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

    // The integrations add the lambda:InvokeFunction permissions, scoped to this API's routes.
    const webhookIntegration = new HttpLambdaIntegration('Webhook', props.webhook);
    this.webhookRoutes = [
      ...this.httpApi.addRoutes({
        path: ROUTES.promotion,
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
      Validations.of(route).acknowledge({
        id: 'AwsSolutions-APIG4',
        reason:
          "Flux's generic-hmac Provider authenticates with an HMAC of the raw body in X-Signature, which no API Gateway authoriser can check (authorisers do not see the body). The webhook function verifies it, constant-time, before it reads or records anything, and answers 401 otherwise; stage throttling bounds the cost of unsigned requests.",
      });
    }

    const pipelinesIntegration = new HttpLambdaIntegration('Pipelines', props.pipelinesApi);
    const iamAuthorizer = new HttpIamAuthorizer();
    this.pipelinesRoutes = [
      ...this.httpApi.addRoutes({
        path: ROUTES.pipelines,
        methods: [HttpMethod.PUT],
        integration: pipelinesIntegration,
        authorizer: iamAuthorizer,
      }),
      ...this.httpApi.addRoutes({
        path: ROUTES.pipeline,
        methods: [HttpMethod.GET],
        integration: pipelinesIntegration,
        authorizer: iamAuthorizer,
      }),
    ];
  }
}
