/**
 * Server reflection (v1 and v1alpha) from the real FileDescriptorProtos that `buf build`
 * writes into src/gen/descriptors (`npm run generate`). proto-loader's descriptors merge files
 * per package and drop their dependency lists, which grpcurl cannot link; these are the files
 * exactly as compiled, with their imports, proto3 optional fields and comments.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { createFileRegistry, fromBinary } from "@bufbuild/protobuf";
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { status as Status, type Server, type ServerDuplexStream, type UntypedServiceImplementation } from "@grpc/grpc-js";
import { ReflectionService } from "@grpc/reflection";

const DESCRIPTOR_DIR = fileURLToPath(new URL("../gen/descriptors/", import.meta.url));
/** workflow.v1, google.rpc (error details clients decode), grpc.health.v1. */
const DESCRIPTOR_SETS = ["workflow.binpb", "google-rpc.binpb", "health.binpb"];

/** Splits a FileDescriptorSet (field 1: repeated FileDescriptorProto) into its encoded files, keyed by file name. */
function filesOf(set: Uint8Array, into: Map<string, Uint8Array>): void {
  const reader = new BinaryReader(set);
  while (reader.pos < reader.len) {
    const [field, wireType] = reader.tag();
    if (field !== 1 || wireType !== WireType.LengthDelimited) {
      reader.skip(wireType);
      continue;
    }
    const file = reader.bytes();
    const name = fileNameOf(file);
    if (!into.has(name)) into.set(name, file);
  }
}

/** FileDescriptorProto.name is field 1. */
function fileNameOf(file: Uint8Array): string {
  const reader = new BinaryReader(file);
  while (reader.pos < reader.len) {
    const [field, wireType] = reader.tag();
    if (field === 1 && wireType === WireType.LengthDelimited) return reader.string();
    reader.skip(wireType);
  }
  throw new Error("FileDescriptorProto without a name");
}

/** Every file descriptor the server exposes, one encoded FileDescriptorProto each. */
export function loadFileDescriptors(): Uint8Array[] {
  const files = new Map<string, Uint8Array>();
  for (const set of DESCRIPTOR_SETS) filesOf(readFileSync(DESCRIPTOR_DIR + set), files);
  return [...files.values()];
}

/**
 * Extension numbers by extended message type, for every message type the server describes (an
 * empty list for a type without extensions, as grpc-go's reflection answers).
 */
export function extensionNumbersByType(files: Uint8Array[]): Map<string, number[]> {
  const set = fromBinary(FileDescriptorSetSchema, Buffer.concat(files.map((f) => fileEntry(f))));
  const registry = createFileRegistry(set);
  const byType = new Map<string, number[]>();
  for (const type of registry) if (type.kind === "message") byType.set(type.typeName, []);
  for (const type of registry) {
    if (type.kind !== "extension") continue;
    const numbers = byType.get(type.extendee.typeName) ?? [];
    numbers.push(type.number);
    byType.set(type.extendee.typeName, numbers.sort((a, b) => a - b));
  }
  return byType;
}

/** A FileDescriptorSet entry (field 1, length-delimited) holding one encoded file. */
function fileEntry(file: Uint8Array): Buffer {
  const length: number[] = [];
  for (let n = file.length; ; n = Math.floor(n / 128)) {
    if (n < 128) {
      length.push(n);
      break;
    }
    length.push((n % 128) | 0x80);
  }
  return Buffer.concat([Buffer.from([0x0a, ...length]), file]);
}

/** A reflection request as @grpc/reflection's proto-loader objects carry it. */
interface ReflectionRequest {
  host?: string;
  messageRequest?: string;
  allExtensionNumbersOfType?: string;
}

export interface ReflectionOptions {
  /** Sees every reflection request (kind and argument), for tests that compare clients. */
  onRequest?: (kind: string, argument: unknown) => void;
}

/**
 * Serves reflection v1 and v1alpha with @grpc/reflection, answering all_extension_numbers_of_type
 * here: the library answers NOT_FOUND for a message without extensions, and grpcurl (jhump/protoreflect)
 * asks exactly that before it decodes a google.protobuf.Any, such as every error detail; on
 * NOT_FOUND it prints the detail as undecoded base64.
 */
export function addReflection(server: Pick<Server, "addService">, options: ReflectionOptions = {}): void {
  // Decoding every descriptor (protobufjs, twice: v1 and v1alpha) is a fifth of the server's start-up
  // CPU, for a service most processes never see called: the services are registered now (a library
  // instance without files gives their definitions) and built on their first call.
  let handlers: Map<string, (call: ServerDuplexStream<ReflectionRequest, unknown>) => void> | undefined;
  const handlerFor = (path: string) => {
    handlers ??= buildReflection(options);
    const handler = handlers.get(path);
    if (!handler) throw new Error(`reflection: no handler for ${path}`);
    return handler;
  };
  new ReflectionService({} as never).addToServer({
    addService(service) {
      const path = (service as unknown as { ServerReflectionInfo: { path: string } }).ServerReflectionInfo.path;
      server.addService(service, {
        ServerReflectionInfo: (call: ServerDuplexStream<ReflectionRequest, unknown>) => handlerFor(path)(call),
      });
    },
  });
}

/** The real reflection handlers, by method path (v1 and v1alpha), over every file the server describes. */
function buildReflection(options: ReflectionOptions): Map<string, (call: ServerDuplexStream<ReflectionRequest, unknown>) => void> {
  const built = new Map<string, (call: ServerDuplexStream<ReflectionRequest, unknown>) => void>();
  const files = loadFileDescriptors();
  const extensions = extensionNumbersByType(files);
  // @grpc/reflection reads `fileDescriptorProtos` off each entry of a proto-loader package definition.
  const pkg = { all: { fileDescriptorProtos: files.map((f) => Buffer.from(f)) } };
  const answerExtensions = (request: ReflectionRequest) => {
    const type = request.allExtensionNumbersOfType ?? "";
    const numbers = extensions.get(type);
    return {
      validHost: request.host,
      originalRequest: request,
      ...(numbers
        ? { allExtensionNumbersResponse: { baseTypeName: type, extensionNumber: numbers } }
        : { errorResponse: { errorCode: Status.NOT_FOUND, errorMessage: `Type not found: ${type}` } }),
    };
  };
  const wrapped: Pick<Server, "addService"> = {
    addService(service, implementation: UntypedServiceImplementation) {
      const handler = implementation.ServerReflectionInfo as (call: ServerDuplexStream<ReflectionRequest, unknown>) => void;
      const path = (service as unknown as { ServerReflectionInfo: { path: string } }).ServerReflectionInfo.path;
      built.set(path, (call: ServerDuplexStream<ReflectionRequest, unknown>) => {
          // The library only registers 'data' and 'end' listeners and writes one response per request.
          const view = new Proxy(call, {
            get(target, property) {
              if (property === "on") {
                return (event: string, listener: (...args: unknown[]) => void) => {
                  if (event !== "data") return target.on(event, listener);
                  return target.on("data", (request: ReflectionRequest) => {
                    const kind = request.messageRequest ?? "";
                    options.onRequest?.(kind, request[kind as keyof ReflectionRequest]);
                    if (kind === "allExtensionNumbersOfType") target.write(answerExtensions(request));
                    else listener(request);
                  });
                };
              }
              const value = Reflect.get(target, property, target) as unknown;
              return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
            },
          });
          handler(view);
      });
    },
  };
  const reflection = new ReflectionService(pkg as never);
  serveAsCompiled(reflection, files);
  reflection.addToServer(wrapped);
  return built;
}

/** The private parts of @grpc/reflection 1.x's v1 and v1alpha implementations this relies on. */
interface ReflectionInternals {
  files: Record<string, object>;
  fileEncodings: Map<object, Uint8Array>;
}

/**
 * @grpc/reflection decodes each file with protobufjs and serves it re-encoded, which drops the
 * custom options protobufjs does not know, such as the google.api.http routes on the RPCs. Serve
 * every file byte for byte as buf compiled it instead (its index of symbols stays as built).
 */
function serveAsCompiled(reflection: ReflectionService, files: Uint8Array[]): void {
  for (const impl of [(reflection as unknown as { v1: ReflectionInternals }).v1, (reflection as unknown as { v1Alpha: ReflectionInternals }).v1Alpha]) {
    if (!impl?.files || !(impl.fileEncodings instanceof Map)) {
      throw new Error("@grpc/reflection internals changed: files / fileEncodings not found; see serveAsCompiled in src/grpc/reflection.ts");
    }
    for (const bytes of files) {
      const file = impl.files[fileNameOf(bytes)];
      if (file) impl.fileEncodings.set(file, bytes);
    }
  }
}

