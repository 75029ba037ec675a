#!/usr/bin/python3
"""Proves that the largest errors the server can produce reach a Python grpcio client with its default
settings (8 KB of metadata at most) as the status they are, with decodable details: a definition with
200 bad state ids, the worst definition the limits allow, a precondition failure listing 500 allowed
actions, and a malformed request with hundreds of invalid UTF-8 strings.

Usage: /usr/bin/python3 test/python/large_errors.py HOST:PORT [--buf PATH]
Exits 0 with "large errors passed"; 1 with "large errors FAILED at ..." on the first mismatch;
2 when the stubs cannot be generated; 3 when grpc is not installed.
"""
import argparse
import sys
import tempfile
import uuid
from pathlib import Path

try:
    import grpc
except ImportError as exc:
    print(f"python grpc is missing for {sys.executable} ({exc})", file=sys.stderr)
    sys.exit(3)

sys.path.insert(0, str(Path(__file__).resolve().parent))
import journey  # noqa: E402  (generate_stubs, Mismatch)


class Checks:
    def __init__(self, channel):
        from google.rpc import error_details_pb2, status_pb2
        from workflow.v1 import resources_pb2, service_pb2, service_pb2_grpc

        self.pb, self.res, self.details, self.status_pb = service_pb2, resources_pb2, error_details_pb2, status_pb2
        self.channel = channel
        self.stub = service_pb2_grpc.WorkflowServiceStub(channel)
        self.suffix = uuid.uuid4().hex[:8]

    def fail(self, what, message):
        raise journey.Mismatch(f"{what}: {message}")

    def decode(self, what, err, code, reason):
        """Checks the status code, then decodes grpc-status-details-bin; returns (ErrorInfo, BadRequest, PreconditionFailure)."""
        if err.code() != code:
            self.fail(what, f"expected {code.name}, got {err.code().name}: {err.details()}")
        raw = [v for k, v in (err.trailing_metadata() or ()) if k == "grpc-status-details-bin"]
        if len(raw) != 1:
            self.fail(what, "no grpc-status-details-bin")
        status = self.status_pb.Status.FromString(raw[0])
        found = {}
        for any_detail in status.details:
            for cls in (self.details.ErrorInfo, self.details.BadRequest, self.details.PreconditionFailure):
                if any_detail.Is(cls.DESCRIPTOR):
                    msg = cls()
                    any_detail.Unpack(msg)
                    found[cls.__name__] = msg
        if found.get("ErrorInfo") is None or found["ErrorInfo"].reason != reason:
            self.fail(what, f"ErrorInfo.reason should be {reason}: {status}")
        print(f"ok   {what}: {err.code().name} / {reason}, {len(raw[0])} bytes of details, "
              f"{len(err.details())} characters of message", flush=True)
        return found.get("ErrorInfo"), found.get("BadRequest"), found.get("PreconditionFailure")

    def expect_error(self, what, method, request, code, reason):
        try:
            getattr(self.stub, method)(request, timeout=20)
        except grpc.RpcError as err:
            return self.decode(what, err, code, reason)
        self.fail(what, "the call succeeded")

    def last_says_more(self, what, violations, expected_text):
        last = violations[-1]
        if last.reason != "TOO_MANY_VIOLATIONS" or expected_text not in last.description:
            self.fail(what, f"the last violation should say how many more and mention {expected_text!r}: {last}")

    def bad_state_ids(self):
        res = self.res
        states = [res.State(id=f"bad id {i}!", name="x", initial=(i == 0)) for i in range(200)]
        definition = res.Definition(id=f"many-bad-{self.suffix}", name="200 bad ids", states=states)
        _, bad, _ = self.expect_error("200 bad state ids", "CreateDefinition",
                                      self.pb.CreateDefinitionRequest(definition=definition),
                                      grpc.StatusCode.INVALID_ARGUMENT, "DEFINITION_INVALID")
        self.last_says_more("200 bad state ids", bad.field_violations, "ValidateDefinition")

    def worst_definition(self):
        res = self.res
        # Every rule broken everywhere, within the 4 MB request limit: too-long ids, names and descriptions
        # (non-ASCII, so every quoted value is as long as it can be), many initial states, unknown targets.
        long_id = "\u2603" * 100
        states = [res.State(id=f"{long_id}{i}", name="\u2603" * 300, description="\u2603" * 2500, initial=True)
                  for i in range(200)]
        actions = [res.Action(id=f"{long_id}{i}", name="\u2603" * 300, from_states=[f"\u2603{i}-{j}" for j in range(20)],
                              to_state="\u2603" * 100) for i in range(500)]
        definition = res.Definition(id=long_id, name="\u2603" * 300, description="\u2603" * 2500, version=-1,
                                    states=states, actions=actions)
        _, bad, _ = self.expect_error("the worst definition the limits allow", "CreateDefinition",
                                      self.pb.CreateDefinitionRequest(definition=definition),
                                      grpc.StatusCode.INVALID_ARGUMENT, "DEFINITION_INVALID")
        self.last_says_more("the worst definition", bad.field_violations, "ValidateDefinition")

    def many_allowed_actions(self):
        res = self.res
        ids = [f"{'a' * 60}{i:04d}" for i in range(499)]
        definition = res.Definition(
            id=f"wide-{self.suffix}", name="500 actions from one state",
            states=[res.State(id="start", initial=True), res.State(id="next"), res.State(id="end", final=True)],
            actions=[res.Action(id=i, from_states=["start"], to_state="next") for i in ids]
            + [res.Action(id="finish", from_states=["next"], to_state="end")])
        self.stub.CreateDefinition(self.pb.CreateDefinitionRequest(definition=definition), timeout=20)
        instance = self.stub.StartInstance(self.pb.StartInstanceRequest(definition_id=definition.id), timeout=20).instance
        _, _, failure = self.expect_error("a precondition failure with 499 allowed actions", "ExecuteAction",
                                          self.pb.ExecuteActionRequest(instance_id=instance.id, action_id="finish"),
                                          grpc.StatusCode.FAILED_PRECONDITION, "ACTION_NOT_ALLOWED")
        kinds = [v.type for v in failure.violations]
        if "CURRENT_STATE" not in kinds or kinds[-1] != "MORE_ALLOWED_ACTIONS":
            self.fail("499 allowed actions", f"violation types {kinds[:3]}...{kinds[-3:]}")

    def malformed_strings(self):
        res = self.res
        # A valid request whose strings are then corrupted: every "\u00a7" (C2 A7) becomes FF FE, same length.
        states = [res.State(id=f"s{i}", name=f"n\u00a7{i}", description=f"d\u00a7{i}", initial=(i == 0)) for i in range(200)]
        definition = res.Definition(id=f"utf8-{self.suffix}", name="n\u00a7", description="d\u00a7", states=states)
        body = self.pb.CreateDefinitionRequest(definition=definition).SerializeToString().replace(b"\xc2\xa7", b"\xff\xfe")
        call = self.channel.unary_unary("/workflow.v1.WorkflowService/CreateDefinition",
                                        request_serializer=lambda b: b, response_deserializer=lambda b: b)
        try:
            call(body, timeout=20)
        except grpc.RpcError as err:
            _, bad, _ = self.decode("402 invalid UTF-8 strings", err, grpc.StatusCode.INVALID_ARGUMENT, "MALFORMED_REQUEST")
            if bad.field_violations[0].field != "definition.name":
                self.fail("402 invalid UTF-8 strings", f"first violation {bad.field_violations[0]}")
            self.last_says_more("402 invalid UTF-8 strings", bad.field_violations, "more")
            return
        self.fail("402 invalid UTF-8 strings", "the call succeeded")

    def run(self):
        for step in (self.bad_state_ids, self.worst_definition, self.many_allowed_actions, self.malformed_strings):
            step()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("address")
    parser.add_argument("--buf", default=str(journey.REPO / "node_modules" / ".bin" / "buf"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="workflow-py-stubs-") as out:
        try:
            journey.generate_stubs(args.buf, Path(out))
        except (RuntimeError, OSError) as exc:
            print(f"large errors FAILED generating stubs: {exc}", file=sys.stderr)
            return 2
        sys.path.insert(0, out)
        # grpcio's defaults (8 KB of metadata, 4 MB messages); only the proxy is turned off for loopback.
        with grpc.insecure_channel(args.address, options=[("grpc.enable_http_proxy", 0)]) as channel:
            try:
                Checks(channel).run()
            except journey.Mismatch as exc:
                print(f"large errors FAILED at {exc}", file=sys.stderr)
                return 1
    print(f"large errors passed against {args.address}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
