/**
 * Server reflection (v1 and v1alpha) from the real FileDescriptorProtos that `buf build`
 * writes into src/gen/descriptors (`npm run generate`). proto-loader's descriptors merge files
 * per package and drop their dependency lists, which grpcurl cannot link; these are the files
 * exactly as compiled, with their imports, proto3 optional fields and comments.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";
import type { Server } from "@grpc/grpc-js";
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

export function addReflection(server: Pick<Server, "addService">): void {
  // @grpc/reflection reads `fileDescriptorProtos` off each entry of a proto-loader package definition.
  const files = loadFileDescriptors();
  const pkg = { all: { fileDescriptorProtos: files.map((f) => Buffer.from(f)) } };
  const reflection = new ReflectionService(pkg as never);
  serveAsCompiled(reflection, files);
  reflection.addToServer(server);
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
