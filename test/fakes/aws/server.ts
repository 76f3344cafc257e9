// A stateful AWS endpoint on 127.0.0.1 speaking EC2 Query, EBS direct (REST-JSON), SSM (JSON 1.1) and STS Query,
// so tests drive the real SDK clients over HTTP. One server serves every service and region: both come from the
// SigV4 credential scope in the Authorization header.
import { createHash, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { ec2Actions, ec2Namespace, rejectUnknownParameters } from './ec2.ts';
import { handleEbs, routeEbs } from './ebs.ts';
import { FakeServiceError } from './errors.ts';
import { ssmActions } from './ssm.ts';
import { FakeAwsState, type FakeOptions } from './state.ts';
import { fakeCredentials, sigV4Messages, verifySigV4, type SigV4Failure } from './sigv4.ts';
import { toXml, xmlDocument } from './xml.ts';

export { FakeAwsState } from './state.ts';

const stsNamespace = 'https://sts.amazonaws.com/doc/2011-06-15/';

export interface FakeAws {
  url: string;
  state: FakeAwsState;
  /** Environment that points the SDK (and brl) at this endpoint with dummy credentials. */
  env: Record<string, string>;
  close(): Promise<void>;
}

async function readBody(request: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function send(response: ServerResponse, status: number, contentType: string, body: string | Buffer, headers: Record<string, string> = {}): void {
  response.writeHead(status, { 'content-type': contentType, 'x-amzn-requestid': randomUUID(), ...headers });
  response.end(body);
}

function faultError(service: string, kind: 'throttle' | 'server-error'): FakeServiceError {
  if (kind === 'server-error') {
    const code = { ec2: 'InternalError', ebs: 'InternalServerException', ssm: 'InternalServerError', sts: 'InternalFailure' }[service] ?? 'InternalError';
    return new FakeServiceError(code, 'injected server error', 500);
  }
  if (service === 'ec2') return new FakeServiceError('RequestLimitExceeded', 'Request limit exceeded.', 503);
  if (service === 'ebs') return new FakeServiceError('RequestThrottledException', 'injected throttling', 400);
  if (service === 'sts') return new FakeServiceError('Throttling', 'Rate exceeded', 400);
  return new FakeServiceError('ThrottlingException', 'Rate exceeded', 400);
}

/** What each service answers to an unknown access key or a wrong signature. */
function authError(service: string, failure: Exclude<SigV4Failure, 'missing'>): FakeServiceError {
  const message = sigV4Messages[failure];
  if (service === 'ec2') {
    return failure === 'unknown-key'
      ? new FakeServiceError('AuthFailure', 'AWS was not able to validate the provided access credentials', 401)
      : new FakeServiceError('SignatureDoesNotMatch', message, 403);
  }
  if (service === 'sts') return new FakeServiceError(failure === 'unknown-key' ? 'InvalidClientTokenId' : 'SignatureDoesNotMatch', message, 403);
  // JSON 1.1 services (SSM, KMS) answer 400, REST-JSON EBS 403.
  const status = service === 'ebs' ? 403 : 400;
  return new FakeServiceError(failure === 'unknown-key' ? 'UnrecognizedClientException' : 'InvalidSignatureException', message, status);
}

function sendError(response: ServerResponse, service: string, error: FakeServiceError): void {
  const requestId = randomUUID();
  if (service === 'ec2') {
    send(response, error.status, 'text/xml', `<?xml version="1.0" encoding="UTF-8"?>\n<Response>${toXml({ Errors: { Error: { Code: error.code, Message: error.message } }, RequestID: requestId })}</Response>`);
  } else if (service === 'sts') {
    send(response, error.status, 'text/xml', xmlDocument('ErrorResponse', stsNamespace, { Error: { Type: error.status >= 500 ? 'Receiver' : 'Sender', Code: error.code, Message: error.message }, RequestId: requestId }));
  } else if (service === 'ebs') {
    send(response, error.status, 'application/json', JSON.stringify({ Message: error.message, Reason: error.code }), { 'x-amzn-errortype': error.code });
  } else {
    send(response, error.status, 'application/x-amz-json-1.1', JSON.stringify({ __type: error.code, message: error.message }));
  }
}

async function handle(state: FakeAwsState, request: IncomingMessage, response: ServerResponse): Promise<void> {
  const body = await readBody(request);
  if (state.options.latencyMs > 0) await sleep(state.options.latencyMs);
  if (request.url === '/__fake/stats') {
    // Not AWS: lets a benchmark running the endpoint in another process read what it received.
    const snapshots = [...state.snapshots.values()].map((s) => ({ id: s.id, state: s.state, blocks: s.blocks.size, bytesWritten: s.bytesWritten }));
    send(response, 200, 'application/json', JSON.stringify({ requestCounts: Object.fromEntries(state.requestCounts), snapshots }));
    return;
  }
  const auth = await verifySigV4(request, body);
  if (!auth.ok) {
    if (!auth.scope) send(response, 403, 'text/plain', 'missing SigV4 Authorization header');
    else sendError(response, auth.scope.service, authError(auth.scope.service, auth.failure as Exclude<SigV4Failure, 'missing'>));
    return;
  }
  const { region, service } = auth.scope;
  if (state.options.disabledRegions.has(region)) {
    sendError(response, service, authError(service, 'unknown-key'));
    return;
  }
  const path = new URL(request.url ?? '/', 'http://fake').pathname;
  let operation: string;
  let params: URLSearchParams | undefined;
  let ebsRoute: ReturnType<typeof routeEbs>;
  if (service === 'ec2' || service === 'sts') {
    params = new URLSearchParams(body.toString('utf8'));
    operation = params.get('Action') ?? '';
  } else if (service === 'ssm') {
    operation = String(request.headers['x-amz-target'] ?? '').replace(/^AmazonSSM\./, '');
  } else if (service === 'ebs') {
    ebsRoute = routeEbs(request.method ?? '', path);
    operation = ebsRoute?.operation ?? '';
  } else {
    send(response, 400, 'text/plain', `unsupported service ${service}`);
    return;
  }
  state.recordRequest(operation, region);
  try {
    // As AWS does: a signed payload hash must be the body's (brl precomputes it for snapshot blocks).
    const payloadHash = request.headers['x-amz-content-sha256'];
    if (typeof payloadHash === 'string' && /^[0-9a-f]{64}$/.test(payloadHash) && payloadHash !== createHash('sha256').update(body).digest('hex')) {
      throw new FakeServiceError('XAmzContentSHA256Mismatch', 'The provided x-amz-content-sha256 header does not match what was computed.', 400);
    }
    const fault = state.takeFault(operation, region);
    if (fault) throw faultError(service, fault);
    if (service === 'ec2') {
      const action = ec2Actions[operation];
      if (!action) throw new FakeServiceError('InvalidAction', `The action ${operation} is not valid for this web service.`);
      rejectUnknownParameters(operation, params as URLSearchParams);
      const result = action(state, region, params as URLSearchParams);
      send(response, 200, 'text/xml', xmlDocument(`${operation}Response`, ec2Namespace, { requestId: randomUUID(), ...(result as object) }));
    } else if (service === 'sts') {
      if (operation !== 'GetCallerIdentity') throw new FakeServiceError('InvalidAction', `unsupported ${operation}`);
      const account = state.options.accountId;
      send(response, 200, 'text/xml', xmlDocument('GetCallerIdentityResponse', stsNamespace, {
        GetCallerIdentityResult: { Arn: `arn:aws:iam::${account}:user/brl-test`, UserId: 'AIDAFAKEUSER', Account: account },
        ResponseMetadata: { RequestId: randomUUID() },
      }));
    } else if (service === 'ssm') {
      const action = ssmActions[operation];
      if (!action) throw new FakeServiceError('UnknownOperationException', `unsupported ${operation}`);
      const result = action(state, region, JSON.parse(body.toString('utf8') || '{}') as never);
      send(response, 200, 'application/x-amz-json-1.1', JSON.stringify(result));
    } else {
      if (!ebsRoute) throw new FakeServiceError('ValidationException', `no EBS route for ${request.method} ${path}`, 400);
      const result = handleEbs(state, region, ebsRoute, request.headers, body);
      send(response, result.status, 'application/json', result.json === undefined ? '' : JSON.stringify(result.json), result.headers);
    }
  } catch (error) {
    if (!(error instanceof FakeServiceError)) throw error;
    sendError(response, service, error);
  }
}

export async function startFakeAws(options: Partial<FakeOptions> = {}): Promise<FakeAws> {
  const state = new FakeAwsState(options);
  const server: Server = createServer((request, response) => {
    handle(state, request, response).catch((error: unknown) => {
      send(response, 500, 'text/plain', String(error instanceof Error ? error.stack : error));
    });
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    state,
    env: {
      AWS_ENDPOINT_URL: url,
      AWS_ACCESS_KEY_ID: fakeCredentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: fakeCredentials.secretAccessKey,
      AWS_REGION: 'us-west-2',
      AWS_EC2_METADATA_DISABLED: 'true',
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}
