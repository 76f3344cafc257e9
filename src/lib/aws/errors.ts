// AWS SDK failures a user causes or can fix (no credentials, no network, no permission) as BrlErrors.
import { BrlError, ExitCode, errnoCode } from '../core/errors.ts';

const networkCodes = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH']);
const authErrors = new Set([
  'AuthFailure',
  'UnauthorizedOperation',
  'AccessDenied',
  'AccessDeniedException',
  'InvalidClientTokenId',
  'UnrecognizedClientException',
  'ExpiredToken',
  'ExpiredTokenException',
  'SignatureDoesNotMatch',
]);

export function explainAwsError(error: unknown): unknown {
  if (!(error instanceof Error) || error instanceof BrlError) return error;
  if (error.name === 'CredentialsProviderError') {
    return new BrlError('no AWS credentials found', {
      hint: 'set AWS_PROFILE (and run aws sso login if it uses SSO), or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY',
      exitCode: ExitCode.usage,
      code: 'NO_AWS_CREDENTIALS',
      cause: error,
    });
  }
  const errno = errnoCode(error);
  if (errno !== undefined && networkCodes.has(errno)) {
    return new BrlError(`cannot reach the AWS endpoint: ${error.message}`, {
      hint: 'check the network, and AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_<SERVICE> if set',
      exitCode: ExitCode.network,
      code: 'AWS_UNREACHABLE',
      cause: error,
    });
  }
  if (authErrors.has(error.name)) {
    return new BrlError(`AWS refused the request (${error.name}): ${error.message}`, {
      hint: 'check that the credentials are current and allowed the EC2, EBS, SSM and STS calls brl makes',
      exitCode: ExitCode.failure,
      code: 'AWS_ACCESS_DENIED',
      cause: error,
    });
  }
  return error;
}

export async function withAwsErrors<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    throw explainAwsError(error);
  }
}
