// A client of containerd 1.6's gRPC API over its Unix socket: the services host-ctr uses, loaded
// from the generated descriptor (no .proto parsing on a host), one namespace per client.
import * as grpc from '@grpc/grpc-js';
import { fromJSON } from '@grpc/proto-loader';
import { containerdApiDescriptor } from './api-descriptor.ts';

export type ServiceName = 'containers' | 'content' | 'diff' | 'images' | 'leases' | 'snapshots' | 'tasks' | 'version';

const serviceTypes: Record<ServiceName, string> = {
  containers: 'Containers',
  content: 'Content',
  diff: 'Diff',
  images: 'Images',
  leases: 'Leases',
  snapshots: 'Snapshots',
  tasks: 'Tasks',
  version: 'Version',
};

/** `google.protobuf.Any` as proto-loader passes it. */
export interface AnyMessage {
  type_url: string;
  value: Buffer;
}

export interface Descriptor {
  media_type: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}

export interface Mount {
  type: string;
  source: string;
  target?: string;
  options: string[];
}

type ServiceConstructor = new (address: string, credentials: grpc.ChannelCredentials, options?: grpc.ChannelOptions) => grpc.Client;
type Callback = (error: grpc.ServiceError | null, response: unknown) => void;
type UnaryMethod = (request: unknown, metadata: grpc.Metadata, options: grpc.CallOptions, callback: Callback) => void;

let constructors: Record<ServiceName, ServiceConstructor> | undefined;

/** Service constructors, built once per process from the descriptor. */
function serviceConstructors(): Record<ServiceName, ServiceConstructor> {
  if (constructors !== undefined) return constructors;
  // Wire names as in the protos; 64-bit sizes and offsets as numbers (blobs stay far below 2^53).
  // (protobufjs's JSON types are stricter than the JSON it writes.)
  const definition = fromJSON(containerdApiDescriptor as unknown as Parameters<typeof fromJSON>[0], { keepCase: true, longs: Number, enums: String, defaults: true });
  const loaded = grpc.loadPackageDefinition(definition) as unknown as { containerd: { services: Record<ServiceName, { v1: Record<string, ServiceConstructor> }> } };
  const built = {} as Record<ServiceName, ServiceConstructor>;
  for (const [name, type] of Object.entries(serviceTypes) as [ServiceName, string][]) {
    const constructor = loaded.containerd.services[name].v1[type];
    if (constructor === undefined) throw new Error(`the containerd API descriptor has no ${name}.v1.${type}`);
    built[name] = constructor;
  }
  constructors = built;
  return built;
}

export function isGrpcStatus(error: unknown, code: grpc.status): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === code;
}

export { status as GrpcStatus } from '@grpc/grpc-js';

export interface CallContext {
  /** containerd's lease header: what is written under it is kept from garbage collection until the lease goes. */
  lease?: string;
  timeoutMs?: number;
}

export class ContainerdClient {
  readonly socketPath: string;
  readonly namespace: string;
  readonly #clients = new Map<ServiceName, grpc.Client>();

  constructor(socketPath: string, namespace = 'default') {
    this.socketPath = socketPath;
    this.namespace = namespace;
  }

  #client(service: ServiceName): grpc.Client {
    let client = this.#clients.get(service);
    if (client === undefined) {
      const Constructor = serviceConstructors()[service];
      client = new Constructor(`unix://${this.socketPath}`, grpc.credentials.createInsecure(), {
        // containerd's own clients send this authority over its socket.
        'grpc.default_authority': 'localhost',
      });
      this.#clients.set(service, client);
    }
    return client;
  }

  #metadata(context: CallContext): grpc.Metadata {
    const metadata = new grpc.Metadata();
    metadata.set('containerd-namespace', this.namespace);
    if (context.lease !== undefined) metadata.set('containerd-lease', context.lease);
    return metadata;
  }

  /** One unary call, e.g. `call('tasks', 'Start', {container_id})`. */
  call<T = Record<string, unknown>>(service: ServiceName, method: string, request: object, context: CallContext = {}): Promise<T> {
    const client = this.#client(service) as unknown as Record<string, UnaryMethod>;
    const invoke = client[method];
    if (typeof invoke !== 'function') throw new Error(`containerd ${service} service has no method ${method}`);
    const options: grpc.CallOptions = context.timeoutMs === undefined ? {} : { deadline: Date.now() + context.timeoutMs };
    return new Promise((resolve, reject) => {
      invoke.call(client, request, this.#metadata(context), options, (error, response) => {
        if (error !== null) reject(error);
        else resolve(response as T);
      });
    });
  }

  /**
   * Content.Write: streams `chunks` into the content store under `ref` and commits them as
   * `expected` (containerd hashes what it got and refuses a commit that does not match).
   * Returns false when the store already has the blob.
   */
  async writeContent(ref: string, expected: Descriptor, chunks: AsyncIterable<Buffer>, labels: Record<string, string>, context: CallContext): Promise<boolean> {
    const client = this.#client('content') as unknown as { Write(metadata: grpc.Metadata): grpc.ClientDuplexStream<object, { offset: number }> };
    const stream = client.Write(this.#metadata(context));
    const responses = stream[Symbol.asyncIterator]() as AsyncIterator<{ offset: number }>;
    const exchange = async (request: object): Promise<{ offset: number }> => {
      stream.write(request);
      const next = await responses.next();
      if (next.done === true) throw new Error(`containerd closed the content write of ${expected.digest} early`);
      return next.value;
    };
    try {
      let offset = 0;
      for await (const data of chunks) {
        const reply = await exchange({ action: 'WRITE', ref, total: expected.size, expected: offset === 0 ? expected.digest : '', offset, data });
        offset = reply.offset;
      }
      await exchange({ action: 'COMMIT', ref, total: expected.size, expected: expected.digest, offset, labels });
      stream.end();
      return true;
    } catch (error) {
      stream.cancel();
      if (isGrpcStatus(error, grpc.status.ALREADY_EXISTS)) return false;
      throw error;
    }
  }

  /** Content.Read: a whole blob from the content store (which checked its digest when it was committed). */
  async readContent(digest: string, context: CallContext = {}): Promise<Buffer> {
    const client = this.#client('content') as unknown as { Read(request: object, metadata: grpc.Metadata): grpc.ClientReadableStream<{ data: Buffer }> };
    const parts: Buffer[] = [];
    for await (const chunk of client.Read({ digest }, this.#metadata(context)) as AsyncIterable<{ data: Buffer }>) parts.push(chunk.data);
    return Buffer.concat(parts);
  }

  close(): void {
    for (const client of this.#clients.values()) client.close();
    this.#clients.clear();
  }
}
