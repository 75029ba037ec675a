"""A grpcurl-compatible stand-in for the subset of grpcurl 1.8's command line this repository's
README and samples use, so their examples can run (and be tested) where grpcurl cannot be installed.

Supported: -plaintext, or TLS with -cacert / -cert / -key / -servername (without either, the system's
root certificates), -d '<json>' / -d @ (stdin; JSON messages
may be concatenated), -H 'name: value' (repeatable), -max-time, -connect-timeout, -help, -version;
the verbs `list`, `list <service>`, `describe <symbol>`, and invoking `host:port pkg.Service/Method`
for unary and server-streaming methods (each response is printed as it arrives).

Everything is discovered through server reflection (grpc.reflection.v1alpha, the version grpcurl
1.8 speaks), never from local .proto files, so using it also proves that reflection works.

Output is byte for byte what grpcurl 1.8.5 prints: its JSON formatter is reproduced from the source
of the libraries it is built with (jhump/protoreflect 1.10.1's dynamic messages and golang/protobuf
1.4.2's jsonpb; see JsonFormatter), including their number formats and the odd indentation of a
google.protobuf.Struct. test/samples/standin-drift.test.ts runs every README and docs example and a
generated set of tricky payloads through both where the real grpcurl exists. An RPC error is printed to stderr as
"ERROR:\\n  Code: <Name>\\n  Message: <text>" followed by the google.rpc.Status details from
grpc-status-details-bin, each on one line as grpcurl 1.8.5 prints them. Before it decodes a detail
(a google.protobuf.Any) it asks reflection exactly what grpcurl 1.8.5 asks (jhump/protoreflect's
AnyResolver): file_containing_symbol for the type (unless a file already fetched holds it), then
all_extension_numbers_of_type, then file_containing_extension for each number; when any of these
fails, the detail is printed the way grpcurl prints it (@error / @type / @value). Exit codes: 64 +
status code for an RPC error, 1 for other failures, 2 for command-line mistakes.

Limits: no -insecure (TLS without verification), no client- or bidi-streaming invocation, no -format text, -v or -emit-defaults;
messages of failures that happen before an RPC is sent (bad JSON, unknown field) are worded like
grpcurl's but not byte-for-byte; `describe` prints proto source like grpcurl's (compact, sorted, fully qualified
type names) for services, methods, messages and enums only.
"""

import base64
import json
import math
import struct
import sys
import time

try:
    import grpc
    from google.protobuf import any_pb2, descriptor_pb2, descriptor_pool, json_format, message_factory
    from google.protobuf.descriptor import FieldDescriptor
except ImportError as missing:
    sys.stderr.write(f"grpcurl stand-in: {missing} in {sys.executable}; install Debian's python3-grpcio and "
                     "python3-protobuf, or point GRPCURL_PYTHON at a Python that has grpcio and protobuf\n")
    sys.exit(1)

PROG = "grpcurl"
VERSION = "stand-in for grpcurl 1.8 (test/tools/grpcurl_standin.py)"
STATUS_CODE_OFFSET = 64

# Go's codes.Code.String() names, by number.
CODE_NAMES = [
    "OK", "Canceled", "Unknown", "InvalidArgument", "DeadlineExceeded", "NotFound", "AlreadyExists",
    "PermissionDenied", "ResourceExhausted", "FailedPrecondition", "Aborted", "OutOfRange",
    "Unimplemented", "Internal", "Unavailable", "DataLoss", "Unauthenticated",
]


class Fail(Exception):
    """A failure grpcurl reports with a message and an exit code (1 = error, 2 = usage)."""

    def __init__(self, message, code=1):
        super().__init__(message)
        self.code = code


# ----------------------------------------------------------------------------- command line

BOOL_FLAGS = {"plaintext", "help", "version"}
VALUE_FLAGS = {"d", "H", "max-time", "connect-timeout", "cacert", "cert", "key", "servername"}


def usage_text(prog):
    return (
        "Usage:\n"
        f"\t{prog} [flags] [address] [list|describe] [symbol]\n\n"
        "This is a stand-in for grpcurl that implements only: -plaintext, -cacert, -cert, -key,\n"
        "-servername, -d, -H, -max-time, -connect-timeout, -help, -version; list, describe and unary /\n"
        "server-streaming invocation, all through server reflection (v1alpha).\n"
    )


def usage_error(message):
    raise Fail(f"{message}\nTry '{PROG} -help' for more details.", 2)


def parse_args(argv):
    """Parses flags the way Go's flag package does: flags first, parsing stops at the first non-flag."""
    opts = {"plaintext": False, "help": False, "version": False,
            "d": "", "H": [], "max-time": 0.0, "connect-timeout": 0.0,
            "cacert": "", "cert": "", "key": "", "servername": ""}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if len(arg) < 2 or arg[0] != "-":
            break
        if arg == "--":
            i += 1
            break
        name = arg[2:] if arg.startswith("--") else arg[1:]
        value = None
        if "=" in name:
            name, value = name.split("=", 1)
        if name in BOOL_FLAGS:
            if value is None:
                opts[name] = True
            elif value.lower() in ("1", "t", "true"):
                opts[name] = True
            elif value.lower() in ("0", "f", "false"):
                opts[name] = False
            else:
                usage_error(f'invalid boolean value "{value}" for -{name}: parse error')
        elif name in VALUE_FLAGS:
            if value is None:
                i += 1
                if i >= len(argv):
                    usage_error(f"flag needs an argument: -{name}")
                value = argv[i]
            if name == "H":
                opts["H"].append(value)
            elif name in ("max-time", "connect-timeout"):
                try:
                    opts[name] = float(value)
                except ValueError:
                    usage_error(f'invalid value "{value}" for flag -{name}: parse error')
            else:
                opts[name] = value
        else:
            usage_error(f"flag provided but not defined: -{name}")
        i += 1
    return opts, argv[i:]


def metadata_from_headers(headers):
    """'Name: value' strings to gRPC metadata (lower-case names; -bin values are base64)."""
    md = []
    for h in headers:
        name, _, value = h.partition(":")
        name = name.strip().lower()
        value = value.strip()
        if name.endswith("-bin"):
            for decode in (base64.b64decode, base64.urlsafe_b64decode):
                try:
                    value = decode(value + "=" * (-len(value) % 4))
                    break
                except Exception:  # grpcurl keeps the text when it is not base64
                    continue
        md.append((name, value))
    return md


# ----------------------------------------------------------------------------- reflection (v1alpha)

def _reflection_file():
    """The grpc.reflection.v1alpha messages, built in code so nothing is generated or read from disk."""
    f = descriptor_pb2.FileDescriptorProto(name="grpc_standin/reflection_v1alpha.proto",
                                           package="grpc.reflection.v1alpha", syntax="proto3")
    T = descriptor_pb2.FieldDescriptorProto
    pkg = ".grpc.reflection.v1alpha."

    def msg(name, fields, oneof=None):
        m = f.message_type.add(name=name)
        if oneof:
            m.oneof_decl.add(name=oneof)
        for fname, number, ftype, extra in fields:
            fd = m.field.add(name=fname, number=number, type=ftype,
                             label=T.LABEL_REPEATED if extra.get("repeated") else T.LABEL_OPTIONAL)
            if "type_name" in extra:
                fd.type_name = pkg + extra["type_name"]
            if extra.get("oneof"):
                fd.oneof_index = 0

    S, I32, B, M = T.TYPE_STRING, T.TYPE_INT32, T.TYPE_BYTES, T.TYPE_MESSAGE
    msg("ServerReflectionRequest", [
        ("host", 1, S, {}),
        ("file_by_filename", 3, S, {"oneof": True}),
        ("file_containing_symbol", 4, S, {"oneof": True}),
        ("file_containing_extension", 5, M, {"oneof": True, "type_name": "ExtensionRequest"}),
        ("all_extension_numbers_of_type", 6, S, {"oneof": True}),
        ("list_services", 7, S, {"oneof": True}),
    ], oneof="message_request")
    msg("ExtensionRequest", [("containing_type", 1, S, {}), ("extension_number", 2, I32, {})])
    msg("ServerReflectionResponse", [
        ("valid_host", 1, S, {}),
        ("original_request", 2, M, {"type_name": "ServerReflectionRequest"}),
        ("file_descriptor_response", 4, M, {"oneof": True, "type_name": "FileDescriptorResponse"}),
        ("all_extension_numbers_response", 5, M, {"oneof": True, "type_name": "ExtensionNumberResponse"}),
        ("list_services_response", 6, M, {"oneof": True, "type_name": "ListServiceResponse"}),
        ("error_response", 7, M, {"oneof": True, "type_name": "ErrorResponse"}),
    ], oneof="message_response")
    msg("FileDescriptorResponse", [("file_descriptor_proto", 1, B, {"repeated": True})])
    msg("ExtensionNumberResponse", [("base_type_name", 1, S, {}), ("extension_number", 2, I32, {"repeated": True})])
    msg("ListServiceResponse", [("service", 1, M, {"repeated": True, "type_name": "ServiceResponse"})])
    msg("ServiceResponse", [("name", 1, S, {})])
    msg("ErrorResponse", [("error_code", 1, I32, {}), ("error_message", 2, S, {})])
    return f


def _status_file():
    """google.rpc.Status, to decode grpc-status-details-bin."""
    f = descriptor_pb2.FileDescriptorProto(name="grpc_standin/status.proto", package="google.rpc",
                                           syntax="proto3", dependency=["google/protobuf/any.proto"])
    T = descriptor_pb2.FieldDescriptorProto
    m = f.message_type.add(name="Status")
    m.field.add(name="code", number=1, type=T.TYPE_INT32, label=T.LABEL_OPTIONAL)
    m.field.add(name="message", number=2, type=T.TYPE_STRING, label=T.LABEL_OPTIONAL)
    m.field.add(name="details", number=3, type=T.TYPE_MESSAGE, label=T.LABEL_REPEATED,
                type_name=".google.protobuf.Any")
    return f


_TOOL_POOL = descriptor_pool.DescriptorPool()
_any_fdp = descriptor_pb2.FileDescriptorProto()
any_pb2.DESCRIPTOR.CopyToProto(_any_fdp)
_TOOL_POOL.Add(_any_fdp)
_TOOL_POOL.Add(_reflection_file())
_TOOL_POOL.Add(_status_file())
_TOOL_FACTORY = message_factory.MessageFactory(_TOOL_POOL)
ReflRequest = _TOOL_FACTORY.GetPrototype(_TOOL_POOL.FindMessageTypeByName("grpc.reflection.v1alpha.ServerReflectionRequest"))
ReflResponse = _TOOL_FACTORY.GetPrototype(_TOOL_POOL.FindMessageTypeByName("grpc.reflection.v1alpha.ServerReflectionResponse"))
RpcStatus = _TOOL_FACTORY.GetPrototype(_TOOL_POOL.FindMessageTypeByName("google.rpc.Status"))

REFLECTION_METHOD = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"


class ReflectionNotSupported(Exception):
    def __str__(self):
        return "server does not support the reflection API"


class SymbolNotFound(Exception):
    pass


class ReflectionClient:
    """Asks the server's reflection service for files and keeps them in one descriptor pool."""

    def __init__(self, channel, metadata, timeout_fn):
        self.any_types = {}  # type name -> resolved, as grpcurl's anyResolver caches per invocation
        self._call = channel.stream_stream(REFLECTION_METHOD, request_serializer=lambda m: m.SerializeToString(),
                                           response_deserializer=ReflResponse.FromString)
        self._metadata = metadata
        self._timeout = timeout_fn
        self.pool = descriptor_pool.DescriptorPool()
        self.factory = message_factory.MessageFactory(self.pool)
        self.files = {}  # name -> FileDescriptorProto, every file known (added to the pool)
        self.json_names = {}  # full field name -> the JSON name grpcurl prints (see JsonFormatter)

    def _ask(self, **kwargs):
        try:
            responses = self._call(iter([ReflRequest(**kwargs)]), metadata=self._metadata, timeout=self._timeout())
            for resp in responses:
                return resp
        except grpc.RpcError as err:
            if err.code() == grpc.StatusCode.UNIMPLEMENTED:
                raise ReflectionNotSupported() from None
            raise Fail(go_rpc_error(err)) from None
        raise Fail("reflection stream ended without a response")

    def list_services(self):
        resp = self._ask(list_services="*")
        if resp.WhichOneof("message_response") == "error_response":
            raise Fail(f"rpc error: code = {code_name(resp.error_response.error_code)} desc = {resp.error_response.error_message}")
        return [s.name for s in resp.list_services_response.service]

    def _add_files(self, raw_files):
        protos = {}
        for raw in raw_files:
            fdp = descriptor_pb2.FileDescriptorProto.FromString(raw)
            protos[fdp.name] = fdp

        def add(name):
            if name in self.files:
                return
            fdp = protos.get(name)
            if fdp is None:
                resp = self._ask(file_by_filename=name)
                if resp.WhichOneof("message_response") != "file_descriptor_response":
                    raise LinkError(f"File not found: {name}")
                for raw in resp.file_descriptor_response.file_descriptor_proto:
                    other = descriptor_pb2.FileDescriptorProto.FromString(raw)
                    protos.setdefault(other.name, other)
                fdp = protos.get(name)
                if fdp is None:
                    raise LinkError(f"File not found: {name}")
            for dep in fdp.dependency:
                add(dep)
            link_file(fdp, [self.files[d] for d in fdp.dependency], self.files)
            self.pool.Add(fdp)
            self.files[name] = fdp
            self._note_json_names(fdp)

        for name in list(protos):  # add() may register more files while this runs
            add(name)

    def _note_json_names(self, fdp):
        def walk(messages, scope):
            for m in messages:
                name = f"{scope}.{m.name}" if scope else m.name
                for f in m.field:
                    self.json_names[f"{name}.{f.name}"] = f.json_name if f.HasField("json_name") else f.name
                walk(m.nested_type, name)

        walk(fdp.message_type, fdp.package)

    def file_containing_symbol(self, symbol):
        for fdp in self.files.values():
            if find_in_file(fdp, symbol):
                return fdp
        resp = self._ask(file_containing_symbol=symbol)
        if resp.WhichOneof("message_response") != "file_descriptor_response":
            raise SymbolNotFound(f"Symbol not found: {symbol}")
        self._add_files(resp.file_descriptor_response.file_descriptor_proto)
        for fdp in self.files.values():
            if find_in_file(fdp, symbol):
                return fdp
        raise SymbolNotFound(f"Symbol not found: {symbol}")

    def all_extension_numbers(self, type_name):
        """grpcreflect's AllExtensionNumbersForType: an error response (NOT_FOUND) is an error."""
        resp = self._ask(all_extension_numbers_of_type=type_name)
        if resp.WhichOneof("message_response") != "all_extension_numbers_response":
            raise SymbolNotFound(f"Symbol not found: {type_name}")
        return list(resp.all_extension_numbers_response.extension_number)

    def file_containing_extension(self, type_name, number):
        resp = self._ask(file_containing_extension={"containing_type": type_name, "extension_number": number})
        if resp.WhichOneof("message_response") != "file_descriptor_response":
            raise SymbolNotFound(f"Extension not found: {type_name} {number}")
        self._add_files(resp.file_descriptor_response.file_descriptor_proto)

    def message_class(self, full_name):
        return self.factory.GetPrototype(self.pool.FindMessageTypeByName(full_name))


class LinkError(Exception):
    """A file from reflection that cannot be linked (grpcurl fails the same way)."""


def _file_symbols(fdp):
    """Fully-qualified names of the messages and enums a file defines."""
    out = {}
    prefix = fdp.package + "." if fdp.package else ""

    def walk(messages, scope):
        for m in messages:
            name = scope + m.name
            out[name] = ("message", m)
            for e in m.enum_type:
                out[f"{name}.{e.name}"] = ("enum", e)
            walk(m.nested_type, name + ".")

    walk(fdp.message_type, prefix)
    for e in fdp.enum_type:
        out[prefix + e.name] = ("enum", e)
    return out


def _camel_entry_name(field_name):
    camel = _default_json_name(field_name)
    return camel[:1].upper() + camel[1:] + "Entry"


def link_file(fdp, deps, all_files):
    """Resolves every type reference the way grpcurl 1.8 (jhump/protoreflect) links a reflected file:
    only against the file itself and the files it declares as dependencies (plus their public
    imports). Relative names are resolved from the innermost scope outwards and rewritten fully
    qualified. A reference that resolves nowhere is the error grpcurl reports. Map entry messages
    not named <Field>Entry (protobufjs names them after the field) are renamed, which grpcurl 1.8
    tolerates but Python's descriptor pool does not."""
    visible = dict(_file_symbols(fdp))
    seen = set()

    def add_dep(dep):
        if dep.name in seen:
            return
        seen.add(dep.name)
        visible.update(_file_symbols(dep))
        for i in dep.public_dependency:
            pub = all_files.get(dep.dependency[i])
            if pub is not None:
                add_dep(pub)

    for dep in deps:
        add_dep(dep)

    def resolve(name, scope):
        if name.startswith("."):
            if name[1:] in visible:
                return name[1:]
        else:
            parts = scope.split(".") if scope else []
            for i in range(len(parts), -1, -1):
                candidate = ".".join(parts[:i] + [name])
                if candidate in visible:
                    return candidate
        raise LinkError(f"file {go_json_string(fdp.name)} included an unresolvable reference to {go_json_string(name)}")

    pkg = fdp.package

    def walk(messages, scope):
        for m in messages:
            mscope = f"{scope}.{m.name}" if scope else m.name
            for f in m.field:
                if f.type_name:
                    fqn = resolve(f.type_name, mscope)
                    f.type_name = "." + fqn
                    if not f.HasField("type") or f.type == 0:
                        f.type = FieldDescriptor.TYPE_MESSAGE if visible[fqn][0] == "message" else FieldDescriptor.TYPE_ENUM
            for f in m.field:
                if f.label != FieldDescriptor.LABEL_REPEATED or f.type != FieldDescriptor.TYPE_MESSAGE:
                    continue
                entry = next((n for n in m.nested_type if f.type_name == f".{mscope}.{n.name}"), None)
                if entry is not None and entry.options.map_entry and entry.name != _camel_entry_name(f.name):
                    entry.name = _camel_entry_name(f.name)
                    f.type_name = f".{mscope}.{entry.name}"
                    visible[f"{mscope}.{entry.name}"] = ("message", entry)
            walk(m.nested_type, mscope)

    walk(fdp.message_type, pkg)
    for svc in fdp.service:
        for m in svc.method:
            m.input_type = "." + resolve(m.input_type, pkg)
            m.output_type = "." + resolve(m.output_type, pkg)


def find_in_file(fdp, symbol):
    """Finds a fully-qualified symbol in a FileDescriptorProto: (kind, proto, source path) or None.
    The path is the SourceCodeInfo location path, used to find the element's doc comment."""
    prefix = fdp.package + "." if fdp.package else ""
    if not symbol.startswith(prefix):
        return None
    rest = symbol[len(prefix):]
    for i, svc in enumerate(fdp.service):
        if rest == svc.name:
            return ("service", svc, (6, i))
        for j, m in enumerate(svc.method):
            if rest == f"{svc.name}.{m.name}":
                return ("method", m, (6, i, 2, j))
    for i, e in enumerate(fdp.enum_type):
        if rest == e.name:
            return ("enum", e, (5, i))

    def walk(messages, scope, path):
        for i, m in enumerate(messages):
            name = scope + m.name
            mpath = path + (i,)
            if rest == name:
                return ("message", m, mpath)
            for k, e in enumerate(m.enum_type):
                if rest == f"{name}.{e.name}":
                    return ("enum", e, mpath + (4, k))
            found = walk(m.nested_type, name + ".", mpath + (3,))
            if found:
                return found
        return None

    return walk(fdp.message_type, "", (4,))


# ----------------------------------------------------------------------------- JSON like grpcurl 1.8

def go_json_string(s):
    """A JSON string escaped the way Go's encoding/json does (HTML-safe, U+2028/9 escaped)."""
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif o < 0x20 or ch in "<>&" or o in (0x2028, 0x2029):
            out.append("\\u%04x" % o)
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


# grpcurl 1.8.5 prints a response with golang/protobuf 1.4.2's jsonpb.Marshaler{Indent: "  "}. The
# response is a jhump/protoreflect 1.10.1 dynamic message, which marshals itself (dynamic/json.go,
# indent.go); the well-known types inside it are generated Go types, which jsonpb marshals
# (jsonpb/encode.go), and the dynamic message pastes their text in, indenting every line after the
# first by its own depth. The two halves differ, and both are reproduced here:
# - dynamic: fields in field-number order, only those present; floats as strconv.FormatFloat(f, 'g',
#   -1) ("1e+21", "1e-07", "1.234567e+06"); map keys sorted and written with the text format's escaper
#   (bytes outside ASCII as \ooo octal); an empty message is "{", a blank indented line and "}".
# - jsonpb (Struct, Value, ListValue, Timestamp, Duration, wrappers, Any, Empty): numbers as Go's
#   encoding/json writes a float64 ("1e+21", "1e-7", "0.000001", "100000000000000000000"); map
#   (Struct) keys sorted bytewise; list items and map entries indented two levels deeper than their
#   opening bracket and the closing bracket one level deeper (the odd indentation of a Struct).
# - both: strings escaped by encoding/json (HTML-safe, U+2028/9), 64-bit integers quoted, enums by name.

INDENT = "  "

_JSONPB_WKT = {"Empty", "Any", "BoolValue", "BytesValue", "StringValue", "Int32Value", "UInt32Value",
               "FloatValue", "Int64Value", "UInt64Value", "DoubleValue", "Duration", "Timestamp",
               "NullValue", "Struct", "Value", "ListValue"}
# The types protoreflect's message factory makes generated Go messages of (dynamic/json.go
# wellKnownTypeNames): jsonpb marshals these; every other message is a dynamic message.
_GENERATED_TYPES = {"google.protobuf." + n for n in (
    "Any", "Empty", "Duration", "Timestamp", "Struct", "Value", "ListValue", "DoubleValue", "FloatValue",
    "Int64Value", "UInt64Value", "Int32Value", "UInt32Value", "BoolValue", "StringValue", "BytesValue")}

_INT64_TYPES = {FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_SINT64, FieldDescriptor.TYPE_SFIXED64,
                FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_FIXED64}
_FLOAT_TYPES = {FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE}


class FormatError(Exception):
    """A message grpcurl cannot format (it prints "Failed to format response message N: ...")."""


def _shortest_digits(f, bits):
    """(digits, dp) of the shortest decimal that reads back as f: f = 0.<digits> * 10**dp, as Go's
    strconv computes them for precision -1. f is finite and not zero."""
    f = abs(f)
    if bits == 64:
        text = repr(f)  # Python's repr is the shortest round-trip decimal too
    else:
        text = None
        for p in range(1, 10):
            candidate = "%.*e" % (p - 1, f)
            if struct.unpack("f", struct.pack("f", float(candidate)))[0] == f:
                text = candidate
                break
        text = text or "%.8e" % f
    mantissa, _, exponent = text.partition("e")
    int_part, _, frac_part = mantissa.partition(".")
    digits = (int_part + frac_part).lstrip("0")
    dp = len(int_part.lstrip("0")) + int(exponent or 0)
    if not int_part.lstrip("0"):  # 0.000123: the leading zeros of the fraction move the point
        dp = int(exponent or 0) - (len(frac_part) - len(frac_part.lstrip("0")))
    digits = digits.rstrip("0") or "0"
    return digits, dp


def _fmt_e(neg, digits, dp):
    exp = dp - 1
    mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    return ("-" if neg else "") + mant + "e" + ("-" if exp < 0 else "+") + "%02d" % abs(exp)


def _fmt_f(neg, digits, dp):
    if dp <= 0:
        text = "0." + "0" * (-dp) + digits
    elif dp >= len(digits):
        text = digits + "0" * (dp - len(digits))
    else:
        text = digits[:dp] + "." + digits[dp:]
    return ("-" if neg else "") + text


def go_format_float(f, fmt, bits=64):
    """strconv.FormatFloat(f, fmt, -1, bits) for fmt 'e', 'f' or 'g' (f finite)."""
    neg = math.copysign(1.0, f) < 0
    if f == 0:
        digits, dp = "0", 1
    else:
        digits, dp = _shortest_digits(f, bits)
    if fmt == "g":
        exp = dp - 1
        # %e when the exponent is below -4 or at least the precision, which is 6 for the shortest form
        fmt = "e" if exp < -4 or exp >= 6 else "f"
        if fmt == "e":
            return _fmt_e(neg, digits, dp)
        return _fmt_f(neg, digits, dp)
    if fmt == "e":
        return _fmt_e(neg, digits, dp)
    return _fmt_f(neg, digits, dp)


def go_json_float(f, bits=64):
    """A float as Go's encoding/json writes it (floatEncoder): 'f' form, 'e' form below 1e-6 or from 1e21
    on, with a one-digit negative exponent left unpadded (1e-7, not 1e-07)."""
    a = abs(f)
    use_e = a != 0 and (a < 1e-6 or a >= 1e21)
    if bits == 32 and a != 0:
        a32 = struct.unpack("f", struct.pack("f", a))[0]
        use_e = a32 < struct.unpack("f", struct.pack("f", 1e-6))[0] or a32 >= struct.unpack("f", struct.pack("f", 1e21))[0]
    text = go_format_float(f, "e" if use_e else "f", bits)
    if use_e and len(text) >= 4 and text[-4] == "e" and text[-3] == "-" and text[-2] == "0":
        text = text[:-2] + text[-1]
    return text


def text_format_string(s):
    """A string as protoreflect's text-format writer escapes it (dynamic/text.go writeString): what a
    dynamic message uses for map keys, byte by byte, non-ASCII bytes as octal escapes."""
    out = ['"']
    for c in s.encode("utf-8"):
        if c == 0x0A:
            out.append("\\n")
        elif c == 0x0D:
            out.append("\\r")
        elif c == 0x09:
            out.append("\\t")
        elif c == 0x22:
            out.append('\\"')
        elif c == 0x5C:
            out.append("\\\\")
        elif 0x20 <= c < 0x7F:
            out.append(chr(c))
        else:
            out.append("\\%03o" % c)
    out.append('"')
    return "".join(out)


def _is_map(fd):
    return (fd.type == FieldDescriptor.TYPE_MESSAGE and fd.label == FieldDescriptor.LABEL_REPEATED
            and fd.message_type.GetOptions().map_entry)


def _map_items_sorted(fd, container):
    key_fd = fd.message_type.fields_by_name["key"]
    keys = list(container.keys())
    if key_fd.type == FieldDescriptor.TYPE_STRING:
        keys.sort(key=lambda k: k.encode("utf-8"))
    else:
        keys.sort()  # ints numerically, False before True
    return key_fd, [(k, container[k]) for k in keys]


def _enum_text(fd, number):
    value = fd.enum_type.values_by_number.get(number)
    return go_json_string(value.name) if value is not None else str(number)


def _timestamp_text(seconds, nanos):
    """Go's time.Unix(s, ns).UTC().Format("2006-01-02T15:04:05.000000000"), trimmed as jsonpb trims it."""
    days, secs = divmod(seconds, 86400)
    # civil_from_days (proleptic Gregorian), valid for any year, as Go's time package is
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    y = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    y += 1 if m <= 2 else 0
    year = ("-%04d" % -y) if y < 0 else "%04d" % y
    text = "%s-%02d-%02dT%02d:%02d:%02d.%09d" % (year, m, d, secs // 3600, secs // 60 % 60, secs % 60, nanos)
    for suffix in ("000", "000", ".000"):
        if text.endswith(suffix):
            text = text[: -len(suffix)]
    return f'"{text}Z"'


class JsonFormatter:
    """grpcurl 1.8.5's JSON formatter (see above). refl resolves the types inside Any fields the way
    grpcurl's anyResolver does (through reflection); a type it cannot resolve prints as @error/@value."""

    def __init__(self, refl):
        self.refl = refl

    # ------------------------------------------------------------------ jsonpb (golang/protobuf 1.4.2)

    def jsonpb(self, msg, indent="", type_url=""):
        """jsonWriter.marshalMessage."""
        name = msg.DESCRIPTOR.full_name
        if name not in _GENERATED_TYPES and type_url:
            # A dynamic message inside an Any: it marshals itself (indented), then jsonpb decodes that
            # into a map, adds "@type" and re-encodes it compact, top-level keys sorted.
            return _any_object({"@type": go_json_string(type_url)}, self.dynamic(msg))
        wkt = name[len("google.protobuf."):] if name.startswith("google.protobuf.") else ""
        wkt = wkt if wkt in _JSONPB_WKT else ""
        fields = msg.DESCRIPTOR.fields_by_number
        if wkt == "Any":
            return self.jsonpb_any(msg, indent)
        if wkt.endswith("Value") and wkt not in ("Value", "ListValue"):
            fd = fields[1]
            return self.jsonpb_value(fd, getattr(msg, fd.name), indent)
        if wkt == "Duration":
            s, ns = msg.seconds, msg.nanos
            if ns <= -10**9 or ns >= 10**9:
                raise FormatError(f"ns out of range ({-10**9}, {10**9})")
            if (s > 0 and ns < 0) or (s < 0 and ns > 0):
                raise FormatError("signs of seconds and nanos do not match")
            if s < 0:
                ns = -ns
            text = "%d.%09d" % (s, ns)
            for suffix in ("000", "000", ".000"):
                if text.endswith(suffix):
                    text = text[: -len(suffix)]
            return f'"{text}s"'
        if wkt == "Timestamp":
            if msg.nanos < 0 or msg.nanos >= 10**9:
                raise FormatError(f"ns out of range [0, {10**9})")
            return _timestamp_text(msg.seconds, msg.nanos)
        if wkt == "Value":
            which = msg.WhichOneof("kind")
            if which is None:
                raise FormatError("nil Value")
            return self.jsonpb_value(msg.DESCRIPTOR.fields_by_name[which], getattr(msg, which), indent)
        if wkt in ("Struct", "ListValue"):
            fd = fields[1]
            return self.jsonpb_value(fd, getattr(msg, fd.name), indent)
        # Any other message (Empty among them): its present fields in declaration order.
        out = ["{\n"]
        first = True
        if type_url:
            out.append(f"{indent}{INDENT}\"@type\": {go_json_string(type_url)}")
            first = False
        present = {fd.number for fd, _ in msg.ListFields()}
        for fd in msg.DESCRIPTOR.fields:
            if fd.number not in present:
                continue
            if not first:
                out.append(",\n")
            first = False
            out.append(f"{indent}{INDENT}{go_json_string(fd.json_name)}: ")
            out.append(self.jsonpb_value(fd, getattr(msg, fd.name), indent))
        out.append("\n" + indent + "}")
        return "".join(out)

    def jsonpb_any(self, msg, indent):
        type_url = msg.type_url
        name = type_url.rsplit("/", 1)[-1]
        cls = resolve_any_type(name, self.refl) if self.refl is not None else None
        if cls is None:
            # grpcurl's unknownAny: json.MarshalIndent of @type, @error, @value, re-encoded by jsonpb.
            return _any_object({
                "@type": go_json_string(type_url),
                "@error": go_json_string(f"{name} is not recognized; see @value for raw binary message data"),
                "@value": go_json_string(base64.b64encode(msg.value).decode("ascii")),
            }, None)
        inner = cls.FromString(msg.value)
        if inner.DESCRIPTOR.full_name not in _GENERATED_TYPES:
            return self.jsonpb(inner, indent, type_url)
        return ("{\n" + f"{indent}{INDENT}\"@type\": {go_json_string(type_url)},\n"
                + f"{indent}{INDENT}\"value\": " + self.jsonpb(inner, indent + INDENT) + "\n" + indent + "}")

    def jsonpb_value(self, fd, value, indent):
        """jsonWriter.marshalValue: lists and maps with jsonpb's indentation, else one value."""
        if _is_map(fd):
            key_fd, items = _map_items_sorted(fd, value)
            value_fd = fd.message_type.fields_by_name["value"]
            out = ["{"]
            for i, (k, v) in enumerate(items):
                out.append(("," if i else "") + "\n" + indent + INDENT + INDENT)
                key = ("true" if k else "false") if key_fd.type == FieldDescriptor.TYPE_BOOL else str(k)
                out.append(go_json_string(key) + ": " + self.jsonpb_singular(value_fd, v, indent + INDENT))
            out.append("\n" + indent + INDENT + "}")
            return "".join(out)
        if fd.label == FieldDescriptor.LABEL_REPEATED:
            out = ["["]
            for i, v in enumerate(value):
                out.append(("," if i else "") + "\n" + indent + INDENT + INDENT)
                out.append(self.jsonpb_singular(fd, v, indent + INDENT))
            out.append("\n" + indent + INDENT + "]")
            return "".join(out)
        return self.jsonpb_singular(fd, value, indent)

    def jsonpb_singular(self, fd, value, indent):
        """jsonWriter.marshalSingularValue."""
        if fd.type in (FieldDescriptor.TYPE_MESSAGE, FieldDescriptor.TYPE_GROUP):
            return self.jsonpb(value, indent + INDENT)
        if fd.type == FieldDescriptor.TYPE_ENUM:
            if fd.enum_type.full_name == "google.protobuf.NullValue":
                return "null"
            return _enum_text(fd, value)
        if fd.type in _FLOAT_TYPES:
            if math.isnan(value):
                return '"NaN"'
            if math.isinf(value):
                return '"Infinity"' if value > 0 else '"-Infinity"'
            return go_json_float(value, 32 if fd.type == FieldDescriptor.TYPE_FLOAT else 64)
        return _scalar_text(fd, value)

    # ------------------------------------------------------------------ dynamic message (protoreflect 1.10.1)

    def dynamic(self, msg, depth=0):
        """Message.MarshalJSONPB with Indent "  ": the message's text, its first line at the current
        position and the others indented from `depth` (the indentBuffer's count)."""
        if msg.DESCRIPTOR.full_name in _GENERATED_TYPES:
            return self.jsonpb(msg)
        inner = depth + 1
        out = ["{\n" + INDENT * inner]
        present = sorted((fv for fv in msg.ListFields() if not fv[0].is_extension), key=lambda fv: fv[0].number)
        for i, (fd, value) in enumerate(present):
            if i:
                out.append(",\n" + INDENT * inner)
            out.append(go_json_string(self.dynamic_field_name(fd)) + ": " + self.dynamic_field(fd, value, inner))
        out.append("\n" + INDENT * depth + "}")
        return "".join(out)

    def dynamic_field_name(self, fd):
        """The descriptor's json_name when reflection sent one, else the field's own name (protoreflect
        uses the descriptor proto's json_name field as it is)."""
        names = self.refl.json_names if self.refl is not None else {}
        return names.get(fd.full_name, fd.json_name)

    def dynamic_field(self, fd, value, depth):
        if _is_map(fd):
            _, items = _map_items_sorted(fd, value)
            value_fd = fd.message_type.fields_by_name["value"]
            inner = depth + 1
            parts = []
            for k, v in items:
                key = ("true" if k else "false") if isinstance(k, bool) else str(k)
                parts.append(text_format_string(key) + ": " + self.dynamic_value(value_fd, v, inner))
            return "{\n" + INDENT * inner + (",\n" + INDENT * inner).join(parts) + "\n" + INDENT * depth + "}"
        if fd.label == FieldDescriptor.LABEL_REPEATED:
            inner = depth + 1
            parts = [self.dynamic_value(fd, v, inner) for v in value]
            return "[\n" + INDENT * inner + (",\n" + INDENT * inner).join(parts) + "\n" + INDENT * depth + "]"
        return self.dynamic_value(fd, value, depth)

    def dynamic_value(self, fd, value, depth):
        """marshalKnownFieldValueJSON."""
        if fd.type in (FieldDescriptor.TYPE_MESSAGE, FieldDescriptor.TYPE_GROUP):
            if value.DESCRIPTOR.full_name not in _GENERATED_TYPES:
                return self.dynamic(value, depth)
            text = self.jsonpb(value)
            if depth <= 0:
                return text
            # The generated message's text, every line after the first indented by the depth.
            return text.replace("\n", "\n" + INDENT * depth)
        if fd.type == FieldDescriptor.TYPE_ENUM:
            return _enum_text(fd, value)
        if fd.type in _FLOAT_TYPES:
            if math.isnan(value):
                return '"NaN"'
            if math.isinf(value):
                return '"Infinity"' if value > 0 else '"-Infinity"'
            return go_format_float(value, "g", 32 if fd.type == FieldDescriptor.TYPE_FLOAT else 64)
        return _scalar_text(fd, value)

    def message(self, msg):
        """A whole response, as grpcurl prints it."""
        if msg.DESCRIPTOR.full_name in _GENERATED_TYPES:
            return self.jsonpb(msg)
        return self.dynamic(msg)


def _scalar_text(fd, value):
    """Integers (64-bit ones quoted), booleans, strings and bytes: written alike by both marshalers."""
    if fd.type in _INT64_TYPES:
        return f'"{value}"'
    if fd.type == FieldDescriptor.TYPE_BOOL:
        return "true" if value else "false"
    if fd.type == FieldDescriptor.TYPE_STRING:
        return go_json_string(value)
    if fd.type == FieldDescriptor.TYPE_BYTES:
        return '"' + base64.b64encode(value).decode("ascii") + '"'
    return str(value)


def go_json_compact(text):
    """encoding/json's Compact: the JSON text without the whitespace between tokens."""
    out, in_string, escaped = [], False, False
    for ch in text:
        if in_string:
            out.append(ch)
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
            out.append(ch)
        elif ch not in " \t\r\n":
            out.append(ch)
    return "".join(out)


def _top_level_members(compact):
    """The (key, raw value) pairs of a compact JSON object's top level."""
    members, depth, in_string, escaped, start = [], 0, False, False, 1
    for i, ch in enumerate(compact):
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
            continue
        if ch == '"':
            in_string = True
        elif ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
            if depth == 0 and i > start:
                members.append(compact[start:i])
        elif ch == "," and depth == 1:
            members.append(compact[start:i])
            start = i + 1
    pairs = []
    for member in members:
        key, _, raw = member.partition('":')
        pairs.append((json.loads(key + '"'), raw))
    return pairs


def _any_object(extra, text):
    """What jsonpb does with a message that marshals itself into an Any: its JSON decoded into a map,
    `extra` (already-encoded values, "@type" first of all) added, and re-encoded by encoding/json:
    one line, top-level keys sorted, nested values compacted as they were."""
    members = {}
    if text is not None:
        compact = go_json_compact(text)
        try:
            json.loads(compact)
        except ValueError as err:  # a map key with a non-ASCII byte, written as an octal escape
            raise FormatError(f"type *dynamic.Message produced invalid JSON: {err}") from None
        members = dict(_top_level_members(compact))
    members.update({k: v for k, v in ((json.loads(go_json_string(k)), v) for k, v in extra.items())})
    return "{" + ",".join(f"{go_json_string(k)}:{members[k]}" for k in sorted(members, key=lambda k: k.encode("utf-8"))) + "}"


def format_message(msg, refl):
    """A response message as grpcurl 1.8.5 prints it."""
    return JsonFormatter(refl).message(msg)


def resolve_any_type(name, refl):
    """What grpcurl 1.8.5's anyResolver does before it decodes an Any: FindSymbol, then
    AllExtensionsForType (all_extension_numbers_of_type, then file_containing_extension per number).
    Cached per type for the invocation. Returns the message class, or None when any step fails."""
    if name in refl.any_types:
        return refl.any_types[name]
    cls = None
    try:
        refl.file_containing_symbol(name)
        for number in refl.all_extension_numbers(name):
            refl.file_containing_extension(name, number)
        cls = refl.message_class(name)
    except (SymbolNotFound, KeyError, Fail, ReflectionNotSupported, LinkError):
        cls = None
    refl.any_types[name] = cls
    return cls


def format_any(any_msg, refl):
    """A status detail (a google.protobuf.Any) as grpcurl's PrintStatus formats it with jsonpb."""
    return JsonFormatter(refl).jsonpb(any_msg)


def code_name(code):
    return CODE_NAMES[code] if 0 <= code < len(CODE_NAMES) else f"Code({code})"


def go_rpc_error(err):
    return f"rpc error: code = {code_name(err.code().value[0])} desc = {err.details()}"


def print_status(code, message, details, refl):
    """grpcurl's PrintStatus: the code, the message and each detail, to stderr."""
    w = sys.stderr
    w.write(f"ERROR:\n  Code: {code_name(code)}\n  Message: {message}\n")
    if details:
        w.write("  Details:\n")
        for i, det in enumerate(details, 1):
            prefix = f"  {i})"
            w.write(prefix + "\t")
            pad = " " * len(prefix) + "\t"
            try:
                lines = format_any(det, refl).split("\n")
            except FormatError as err:
                w.write(f"Error parsing detail message: {err}\n")
                continue
            w.write(lines[0] + "\n")
            for line in lines[1:]:
                w.write(pad + line + "\n")
    w.flush()


def status_of(err, deadline_hit):
    """(code, message, details) of a failed call, details decoded from grpc-status-details-bin."""
    code = err.code().value[0]
    message = err.details() or ""
    if err.code() == grpc.StatusCode.DEADLINE_EXCEEDED and deadline_hit:
        message = "context deadline exceeded"  # what grpc-go reports for a client-side deadline
    details = []
    for key, value in err.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            details = list(RpcStatus.FromString(value).details)
    return code, message, details


# ----------------------------------------------------------------------------- describe (protoprint style)

SCALAR_NAMES = {
    FieldDescriptor.TYPE_DOUBLE: "double", FieldDescriptor.TYPE_FLOAT: "float",
    FieldDescriptor.TYPE_INT64: "int64", FieldDescriptor.TYPE_UINT64: "uint64",
    FieldDescriptor.TYPE_INT32: "int32", FieldDescriptor.TYPE_FIXED64: "fixed64",
    FieldDescriptor.TYPE_FIXED32: "fixed32", FieldDescriptor.TYPE_BOOL: "bool",
    FieldDescriptor.TYPE_STRING: "string", FieldDescriptor.TYPE_BYTES: "bytes",
    FieldDescriptor.TYPE_UINT32: "uint32", FieldDescriptor.TYPE_SFIXED32: "sfixed32",
    FieldDescriptor.TYPE_SFIXED64: "sfixed64", FieldDescriptor.TYPE_SINT32: "sint32",
    FieldDescriptor.TYPE_SINT64: "sint64",
}


def _default_json_name(name):
    out, upper = [], False
    for ch in name:
        if ch == "_":
            upper = True
        elif upper:
            out.append(ch.upper())
            upper = False
        else:
            out.append(ch)
    return "".join(out)


def _field_line(fdp, field, message, files):
    proto3 = fdp.syntax == "proto3"
    map_entry = None
    if field.type == FieldDescriptor.TYPE_MESSAGE and field.label == FieldDescriptor.LABEL_REPEATED:
        map_entry = _find_nested(message, field.type_name)
    if map_entry is not None and map_entry.options.map_entry:
        k, v = map_entry.field[0], map_entry.field[1]
        kt = SCALAR_NAMES.get(k.type, k.type_name)
        vt = SCALAR_NAMES.get(v.type, v.type_name)
        text = f"map<{kt}, {vt}> {field.name} = {field.number}"
    else:
        label = ""
        if field.label == FieldDescriptor.LABEL_REPEATED:
            label = "repeated "
        elif field.label == FieldDescriptor.LABEL_REQUIRED:
            label = "required "
        elif not proto3 or field.proto3_optional:
            label = "optional "
        ftype = SCALAR_NAMES.get(field.type, field.type_name)
        text = f"{label}{ftype} {field.name} = {field.number}"
    opts = []
    if field.HasField("json_name") and field.json_name != _default_json_name(field.name):
        opts.append(f"json_name = {go_json_string(field.json_name)}")
    if field.options.deprecated:
        opts.append("deprecated = true")
    if opts:
        text += " [" + ", ".join(opts) + "]"
    return text + ";"


def _find_nested(message, type_name):
    short = type_name.rsplit(".", 1)[-1]
    for nested in message.nested_type:
        if nested.name == short:
            return nested
    return None


class Describer:
    """Proto source for one element, as grpcurl prints it with jhump/protoreflect's protoprint
    (Compact, SortElements, ForceFullyQualifiedNames, doc comments only)."""

    def __init__(self, fdp):
        self.fdp = fdp
        self.comments = {tuple(loc.path): loc.leading_comments
                         for loc in fdp.source_code_info.location if loc.HasField("leading_comments")}

    def _comment(self, path, indent):
        text = self.comments.get(tuple(path))
        if not text:
            return []
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        return [f"{indent}//{line}" for line in lines]

    def message(self, m, path, indent=""):
        lines = self._comment(path, indent) + [f"{indent}message {m.name} {{"]
        inner = indent + "  "
        members = {}
        for j, field in enumerate(m.field):
            if field.HasField("oneof_index") and not field.proto3_optional:
                members.setdefault(field.oneof_index, []).append((j, field))
        printed = set()
        for j, field in sorted(enumerate(m.field), key=lambda jf: jf[1].number):
            if field.HasField("oneof_index") and not field.proto3_optional:
                idx = field.oneof_index
                if idx in printed:
                    continue
                printed.add(idx)
                lines += self._comment(path + (8, idx), inner)
                lines.append(f"{inner}oneof {m.oneof_decl[idx].name} {{")
                for k, member in sorted(members[idx], key=lambda jf: jf[1].number):
                    lines += self._comment(path + (2, k), inner + "  ")
                    lines.append(inner + "  " + _field_line(self.fdp, member, m, None))
                lines.append(f"{inner}}}")
            else:
                lines += self._comment(path + (2, j), inner)
                lines.append(inner + _field_line(self.fdp, field, m, None))
        for k, nested in sorted(enumerate(m.nested_type), key=lambda kn: kn[1].name):
            if not nested.options.map_entry:
                lines.append(self.message(nested, path + (3, k), inner))
        for k, e in sorted(enumerate(m.enum_type), key=lambda ke: ke[1].name):
            lines.append(self.enum(e, path + (4, k), inner))
        lines.append(f"{indent}}}")
        return "\n".join(lines)

    def enum(self, e, path, indent=""):
        lines = self._comment(path, indent) + [f"{indent}enum {e.name} {{"]
        for k, v in sorted(enumerate(e.value), key=lambda kv: kv[1].number):
            lines += self._comment(path + (2, k), indent + "  ")
            lines.append(f"{indent}  {v.name} = {v.number};")
        lines.append(f"{indent}}}")
        return "\n".join(lines)

    def method(self, m, path, indent=""):
        cs = "stream " if m.client_streaming else ""
        ss = "stream " if m.server_streaming else ""
        return "\n".join(self._comment(path, indent) +
                         [f"{indent}rpc {m.name} ( {cs}{m.input_type} ) returns ( {ss}{m.output_type} );"])

    def service(self, s, path):
        lines = self._comment(path, "") + [f"service {s.name} {{"]
        for j, m in sorted(enumerate(s.method), key=lambda jm: jm[1].name):
            lines.append(self.method(m, path + (2, j), "  "))
        lines.append("}")
        return "\n".join(lines)


# ----------------------------------------------------------------------------- main

def split_method(symbol):
    if "/" in symbol:
        svc, _, mth = symbol.rpartition("/")
    else:
        svc, _, mth = symbol.rpartition(".")
    return svc, mth


def read_requests(data):
    """Concatenated JSON values, as grpcurl's JSON request parser reads them."""
    decoder = json.JSONDecoder()
    values, pos = [], 0
    while True:
        while pos < len(data) and data[pos] in " \t\r\n":
            pos += 1
        if pos >= len(data):
            return values
        value, pos = decoder.raw_decode(data, pos)
        values.append(value)


def run(argv):
    opts, args = parse_args(argv)
    if opts["help"]:
        sys.stderr.write(usage_text(PROG))
        return 0
    if opts["version"]:
        sys.stderr.write(f"{PROG} {VERSION}\n")
        return 0
    for flag in ("max-time", "connect-timeout"):
        if opts[flag] < 0:
            usage_error(f"The -{flag} argument must not be negative.")
    if not args:
        usage_error("Too few arguments.")
    target = ""
    if args[0] not in ("list", "describe"):
        target, args = args[0], args[1:]
    if not args:
        usage_error("Too few arguments.")
    verb = "invoke"
    if args[0] in ("list", "describe"):
        verb, args = args[0], args[1:]
    symbol = ""
    if verb == "invoke":
        if not args:
            usage_error("Too few arguments.")
        symbol, args = args[0], args[1:]
    else:
        if opts["d"]:
            sys.stderr.write("Warning: The -d argument is not used with 'list' or 'describe' verb.\n")
        if args:
            symbol, args = args[0], args[1:]
    if args:
        usage_error("Too many arguments.")
    if not target:
        usage_error("No host:port specified.")
    tls_files = {name: opts[name] for name in ("cacert", "cert", "key") if opts[name]}
    if opts["plaintext"] and tls_files:
        usage_error("The -cacert, -cert and -key arguments are only used with TLS (not with -plaintext).")
    if bool(opts["cert"]) != bool(opts["key"]):
        usage_error("The -cert and -key arguments must be used together and both be present.")

    start = time.monotonic()
    deadline = start + opts["max-time"] if opts["max-time"] > 0 else None

    def remaining():
        return None if deadline is None else max(deadline - time.monotonic(), 0.001)

    metadata = metadata_from_headers(opts["H"])
    channel_options = [("grpc.primary_user_agent", "grpcurl-standin/1.8"), ("grpc.enable_http_proxy", 0)]
    if opts["plaintext"]:
        channel = grpc.insecure_channel(target, options=channel_options)
    else:
        pem = {}
        for name, path in tls_files.items():
            try:
                with open(path, "rb") as f:
                    pem[name] = f.read()
            except OSError as err:
                raise Fail(f"Failed to configure transport credentials: {err}") from None
        creds = grpc.ssl_channel_credentials(root_certificates=pem.get("cacert"), private_key=pem.get("key"),
                                             certificate_chain=pem.get("cert"))
        if opts["servername"]:
            channel_options.append(("grpc.ssl_target_name_override", opts["servername"]))
        channel = grpc.secure_channel(target, creds, options=channel_options)
    try:
        dial_timeout = opts["connect-timeout"] or 10.0
        if deadline is not None:
            dial_timeout = min(dial_timeout, remaining())
        try:
            grpc.channel_ready_future(channel).result(timeout=dial_timeout)
        except grpc.FutureTimeoutError:
            raise Fail(f'Failed to dial target host "{target}": context deadline exceeded') from None
        refl = ReflectionClient(channel, metadata, remaining)
        if verb == "list":
            return do_list(refl, symbol)
        if verb == "describe":
            return do_describe(refl, symbol)
        return do_invoke(channel, refl, symbol, opts, metadata, remaining, deadline)
    finally:
        channel.close()


def do_list(refl, symbol):
    if not symbol:
        try:
            services = sorted(refl.list_services())
        except ReflectionNotSupported as err:
            raise Fail(f"Failed to list services: {err}") from None
        print("\n".join(services) if services else "(No services)")
        return 0
    try:
        fdp = refl.file_containing_symbol(symbol)
    except (SymbolNotFound, ReflectionNotSupported, LinkError) as err:
        raise Fail(f'Failed to list methods for service "{symbol}": {err}') from None
    kind, svc, _ = find_in_file(fdp, symbol)
    if kind != "service":
        raise Fail(f'Failed to list methods for service "{symbol}": Service not found: {symbol}')
    methods = sorted(f"{symbol}.{m.name}" for m in svc.method)
    print("\n".join(methods) if methods else "(No methods)")
    return 0


def do_describe(refl, symbol):
    if symbol:
        symbols = [symbol[1:] if symbol.startswith(".") else symbol]
    else:
        try:
            symbols = refl.list_services()
        except ReflectionNotSupported as err:
            raise Fail(f"Failed to list services: {err}") from None
        if not symbols:
            print("Server returned an empty list of exposed services")
    for s in symbols:
        try:
            fdp = refl.file_containing_symbol(s)
        except (SymbolNotFound, ReflectionNotSupported, LinkError) as err:
            raise Fail(f'Failed to resolve symbol "{s}": {err}') from None
        kind, proto, path = find_in_file(fdp, s)
        d = Describer(fdp)
        if kind == "service":
            text, what = d.service(proto, path), "a service"
        elif kind == "method":
            text, what = d.method(proto, path), "a method"
        elif kind == "message":
            text, what = d.message(proto, path), "a message"
        else:
            text, what = d.enum(proto, path), "an enum"
        print(f"{s} is {what}:")
        print(text)
    return 0


def do_invoke(channel, refl, symbol, opts, metadata, remaining, deadline):
    svc_name, mth_name = split_method(symbol)
    if not svc_name or not mth_name:
        raise Fail(f'Error invoking method "{symbol}": given method name "{symbol}" is not in expected format: '
                   "'service/method' or 'service.method'")
    try:
        fdp = refl.file_containing_symbol(svc_name)
    except SymbolNotFound:
        raise Fail(f'Error invoking method "{symbol}": target server does not expose service "{svc_name}"') from None
    except (ReflectionNotSupported, LinkError) as err:
        raise Fail(f'Error invoking method "{symbol}": failed to query for service descriptor "{svc_name}": {err}') from None
    kind, svc, _ = find_in_file(fdp, svc_name)
    if kind != "service":
        raise Fail(f'Error invoking method "{symbol}": target server does not expose service "{svc_name}"')
    method = next((m for m in svc.method if m.name == mth_name), None)
    if method is None:
        raise Fail(f'Error invoking method "{symbol}": service "{svc_name}" does not include a method named "{mth_name}"')
    if method.client_streaming:
        raise Fail(f'Error invoking method "{symbol}": client-streaming methods are not implemented by this grpcurl stand-in')

    req_cls = refl.message_class(method.input_type.lstrip("."))
    resp_cls = refl.message_class(method.output_type.lstrip("."))
    data = sys.stdin.read() if opts["d"] == "@" else opts["d"]
    full_method = f"{svc_name}.{mth_name}"
    try:
        values = read_requests(data)
    except ValueError as err:
        raise Fail(f'Error invoking method "{symbol}": error getting request data: {err}') from None
    if len(values) > 1:
        kind_text = "a server-streaming RPC" if method.server_streaming else "a unary RPC"
        raise Fail(f'Error invoking method "{symbol}": method "{full_method}" is {kind_text}, '
                   "but request data contained more than 1 message")
    request = req_cls()
    if values:
        try:
            json_format.ParseDict(values[0], request)
        except json_format.ParseError as err:
            raise Fail(f'Error invoking method "{symbol}": error getting request data: {err}') from None

    path = f"/{svc_name}/{mth_name}"
    ser = lambda m: m.SerializeToString()  # noqa: E731
    try:
        if method.server_streaming:
            call = channel.unary_stream(path, request_serializer=ser, response_deserializer=resp_cls.FromString)
            for number, resp in enumerate(call(request, metadata=metadata, timeout=remaining()), 1):
                print_response(number, resp, refl)
        else:
            call = channel.unary_unary(path, request_serializer=ser, response_deserializer=resp_cls.FromString)
            print_response(1, call(request, metadata=metadata, timeout=remaining()), refl)
    except grpc.RpcError as err:
        hit = deadline is not None and time.monotonic() >= deadline - 0.01
        code, message, details = status_of(err, hit)
        print_status(code, message, details, refl)
        return STATUS_CODE_OFFSET + code
    return 0


def print_response(number, resp, refl):
    """grpcurl's DefaultEventHandler.OnReceiveResponse: the message, or why it cannot be formatted."""
    try:
        text = format_message(resp, refl)
    except FormatError as err:
        text = f"Failed to format response message {number}: {err}"
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def main():
    try:
        code = run(sys.argv[1:])
    except Fail as err:
        sys.stdout.flush()
        sys.stderr.write(f"{err}\n")
        code = err.code
    except KeyboardInterrupt:
        code = 130
    sys.stdout.flush()
    sys.exit(code)


if __name__ == "__main__":
    main()
