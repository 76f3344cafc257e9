// Changes a real SDK client's requests on the wire: after signing (a forged signature, a body altered in transit)
// or before it (a value the SDK's types would not let a caller send), so tests prove what the fakes refuse.

export interface WireRequest {
  headers: Record<string, string>;
  body?: unknown;
}

interface ClientWithStack {
  middlewareStack: {
    add(middleware: unknown, options: { step: 'build'; name: string }): void;
    addRelativeTo(middleware: unknown, options: { relation: 'after'; toMiddleware: string; name: string }): void;
  };
}

function middleware(change: (request: WireRequest) => void) {
  return (next: (args: { request: unknown }) => Promise<unknown>) => async (args: { request: unknown }) => {
    change(args.request as WireRequest);
    return next(args);
  };
}

export function changeAfterSigning(client: ClientWithStack, change: (request: WireRequest) => void): void {
  client.middlewareStack.addRelativeTo(middleware(change), { relation: 'after', toMiddleware: 'httpSigningMiddleware', name: 'brlTestAfterSigning' });
}

/** Rewrites a Query or JSON body before it is signed, keeping Content-Length right. */
export function changeBodyBeforeSigning(client: ClientWithStack, change: (body: string) => string): void {
  client.middlewareStack.add(
    middleware((request) => {
      request.body = change(String(request.body));
      request.headers['content-length'] = String(Buffer.byteLength(request.body as string));
    }),
    { step: 'build', name: 'brlTestBeforeSigning' },
  );
}

/** Replaces the signature with one of the right shape that no secret produced. */
export function forgeSignature(request: WireRequest): void {
  request.headers.authorization = String(request.headers.authorization).replace(/Signature=[0-9a-f]+/, `Signature=${'deadbeef'.repeat(8)}`);
}
