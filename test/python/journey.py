#!/usr/bin/python3
"""Proves that a Python client that knows only proto/ (plus the public google.rpc protos) can use the
whole workflow.v1 contract: definitions, instances, history, rich error details and a watch stream,
comments and google.protobuf.Struct payloads on actions, GetInstance as_of_version, MigrateInstance, and
instance data (samples/insurance-claim.json: variables as a Struct, a routed action, a GUARD_FAILED and a
PAYLOAD_INVALID decoded from grpc-status-details-bin).

Usage: /usr/bin/python3 test/python/journey.py HOST:PORT [--buf PATH] [--deadline SECONDS]
       [--cacert CA.pem [--cert CLIENT.pem --key CLIENT.key]]   (TLS, and mutual TLS with a client certificate)

Stubs are generated into a temporary directory on every run and never committed. buf (from
node_modules) compiles the .proto files into descriptor sets and grpc_tools.protoc generates the Python
code from those: Debian bookworm's python3-grpc-tools bundles protoc 3.5.1, which cannot parse proto3
`optional` fields from source but generates correct code from a descriptor set built by a newer compiler.

Exits 0 when every step matched the contract; 1 with "journey FAILED at step ..." on the first mismatch;
2 when the stubs cannot be generated; 3 when grpc is not installed.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

try:
    import grpc
    from grpc_tools import protoc
except ImportError as exc:  # The test that runs this script relies on this exact advice.
    print(
        f"python grpc is missing for {sys.executable} ({exc}); "
        "run `apt-get install -y python3-grpcio python3-grpc-tools`",
        file=sys.stderr,
    )
    sys.exit(3)

REPO = Path(__file__).resolve().parents[2]
GOOGLE_PROTOS = REPO / "node_modules" / "google-proto-files"
RPC_PROTOS = ["google/rpc/status.proto", "google/rpc/error_details.proto"]
# Every file of the contract (service.proto imports the others), as a client in another language compiles it.
WORKFLOW_PROTOS = sorted(str(p.relative_to(REPO / "proto")) for p in (REPO / "proto" / "workflow" / "v1").glob("*.proto"))
# service.proto imports these for its google.api.http options (the HTTP routes); buf puts them in the workflow set.
HTTP_ANNOTATION_PROTOS = ["google/api/annotations.proto", "google/api/http.proto"]
DOMAIN = "workflow.v1"


class Mismatch(Exception):
    """The server's answer differs from the contract."""


def generate_stubs(buf: str, out: Path) -> None:
    """Compiles proto/ and the google.rpc protos with buf, then generates Python stubs with grpc_tools."""
    workflow_set = out / "workflow.binpb"
    rpc_set = out / "rpc.binpb"
    builds = [
        [buf, "build", "proto", "--as-file-descriptor-set", "-o", str(workflow_set)],
        [buf, "build", str(GOOGLE_PROTOS.relative_to(REPO)), "--as-file-descriptor-set", "-o", str(rpc_set)]
        + [arg for p in RPC_PROTOS for arg in ("--path", str((GOOGLE_PROTOS / p).relative_to(REPO)))],
    ]
    for cmd in builds:
        done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"`{' '.join(cmd)}` failed ({done.returncode}): {done.stderr.strip()}")
    args = [
        "grpc_tools.protoc",
        f"--descriptor_set_in={workflow_set}{os.pathsep}{rpc_set}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        *WORKFLOW_PROTOS,
        *HTTP_ANNOTATION_PROTOS,
        *RPC_PROTOS,
    ]
    if protoc.main(args) != 0:
        raise RuntimeError(f"grpc_tools.protoc failed: {' '.join(args)}")


class Journey:
    """The client journey, one method per step; each step checks the answer against the contract."""

    def __init__(self, channel: grpc.Channel, deadline: float):
        # Imported here because the modules exist only once generate_stubs has run.
        from google.rpc import error_details_pb2, status_pb2
        from workflow.v1 import resources_pb2, service_pb2, service_pb2_grpc

        from google.protobuf import json_format, struct_pb2

        self.json_format = json_format
        self.struct_pb2 = struct_pb2
        self.pb = service_pb2
        self.res = resources_pb2
        self.rpc_status = status_pb2
        self.details = error_details_pb2
        self.stub = service_pb2_grpc.WorkflowServiceStub(channel)
        self.deadline = deadline
        self.suffix = uuid.uuid4().hex[:8]
        self.step = "setup"

    # ------------------------------------------------------------------ helpers

    def check(self, condition: bool, message: str) -> None:
        if not condition:
            raise Mismatch(message)

    def equal(self, actual, expected, what: str) -> None:
        if actual != expected:
            raise Mismatch(f"{what}: expected {expected!r}, got {actual!r}")

    def call(self, method: str, request):
        """A unary call with a deadline, as every client should make it."""
        return getattr(self.stub, method)(request, timeout=self.deadline)

    def expect_error(self, method: str, request, code: grpc.StatusCode):
        """Calls a unary method that must fail with `code`; returns the decoded google.rpc.Status and details."""
        try:
            response = self.call(method, request)
        except grpc.RpcError as err:
            self.equal(err.code(), code, f"{method} status code (details: {err.details()!r})")
            return self.decode_status(err)
        raise Mismatch(f"{method} should fail with {code.name}, but it succeeded: {response}")

    def decode_status(self, err: grpc.RpcError):
        """Decodes grpc-status-details-bin into google.rpc.Status and unpacks the known details."""
        raw = [value for key, value in (err.trailing_metadata() or ()) if key == "grpc-status-details-bin"]
        self.check(len(raw) == 1, f"expected one grpc-status-details-bin trailer, got {len(raw)}")
        status = self.rpc_status.Status.FromString(raw[0])
        self.equal(status.code, err.code().value[0], "google.rpc.Status.code vs the gRPC status code")
        self.equal(status.message, err.details(), "google.rpc.Status.message vs the gRPC status message")
        found = {}
        for any_detail in status.details:
            for cls in (self.details.ErrorInfo, self.details.BadRequest, self.details.PreconditionFailure):
                if any_detail.Is(cls.DESCRIPTOR):
                    message = cls()
                    any_detail.Unpack(message)
                    found[cls.__name__] = message
        self.check("ErrorInfo" in found, f"no google.rpc.ErrorInfo among the details: {status}")
        self.equal(found["ErrorInfo"].domain, DOMAIN, "ErrorInfo.domain")
        return status, found

    # ------------------------------------------------------------------ steps

    def create_definition(self):
        res = self.res
        self.definition_id = f"py-review-{self.suffix}"
        definition = res.Definition(
            id=self.definition_id,
            name="Document review (Python journey)",
            states=[
                res.State(id="draft", name="Draft", initial=True),
                res.State(id="review", name="In review"),
                res.State(id="approved", name="Approved"),
                res.State(id="published", name="Published", final=True),
                res.State(id="rejected", name="Rejected", final=True),
            ],
            actions=[
                res.Action(id="submit", name="Submit", from_states=["draft"], to_state="review"),
                res.Action(id="approve", name="Approve", from_states=["review"], to_state="approved"),
                res.Action(id="reject", name="Reject", from_states=["review"], to_state="rejected"),
                res.Action(id="publish", name="Publish", from_states=["approved"], to_state="published"),
            ],
        )
        created = self.call("CreateDefinition", self.pb.CreateDefinitionRequest(definition=definition))
        self.check(created.created, "CreateDefinition: created should be true for a new definition")
        self.equal(created.definition.version, 1, "CreateDefinition: version")
        self.equal([s.id for s in created.definition.states], ["draft", "review", "approved", "published", "rejected"],
                   "CreateDefinition: state ids")
        again = self.call("CreateDefinition", self.pb.CreateDefinitionRequest(definition=definition))
        self.check(not again.created, "CreateDefinition: identical content again should return created = false")
        fetched = self.call("GetDefinition", self.pb.GetDefinitionRequest(definition_id=self.definition_id))
        self.equal(fetched.definition.version, 1, "GetDefinition (version 0 = latest): version")
        self.check(not fetched.definition.states[0].HasField("enabled"), "State.enabled omitted on input must stay omitted")

    def start_instance(self):
        self.start_request_id = f"start-{self.suffix}"
        request = self.pb.StartInstanceRequest(definition_id=self.definition_id, request_id=self.start_request_id)
        started = self.call("StartInstance", request).instance
        self.instance_id = started.id
        self.check(started.id != "", "StartInstance: the server should generate an instance id")
        self.equal(started.version, 1, "StartInstance: version")
        self.equal(started.current_state, "draft", "StartInstance: current_state")
        self.equal(started.status, self.res.INSTANCE_STATUS_ACTIVE, "StartInstance: status")
        self.equal(started.definition_version, 1, "StartInstance: definition_version")
        # A retry with the same request_id (what a client does after UNAVAILABLE) returns the same instance.
        retried = self.call("StartInstance", request).instance
        self.equal(retried.id, started.id, "StartInstance retried with the same request_id: instance id")
        view = self.call("GetInstance", self.pb.GetInstanceRequest(instance_id=self.instance_id))
        self.equal(view.current_state.id, "draft", "GetInstance: current_state.id")
        self.equal([a.id for a in view.available_actions], ["submit"], "GetInstance: available_actions")

    def execute(self):
        self.submit_request_id = f"submit-{self.suffix}"
        done = self.call("ExecuteAction", self.pb.ExecuteActionRequest(
            instance_id=self.instance_id, action_id="submit", expected_version=1, request_id=self.submit_request_id))
        self.equal(done.instance.version, 2, "ExecuteAction submit: instance.version")
        self.equal(done.instance.current_state, "review", "ExecuteAction submit: instance.current_state")
        t = done.transition
        self.equal((t.version, t.action_id, t.from_state, t.to_state, t.request_id),
                   (2, "submit", "draft", "review", self.submit_request_id), "ExecuteAction submit: transition")

    def history(self):
        entries, token, pages = [], "", 0
        while True:
            page = self.call("ListInstanceHistory", self.pb.ListInstanceHistoryRequest(
                instance_id=self.instance_id, page_size=1, page_token=token))
            entries.extend(page.entries)
            pages += 1
            token = page.next_page_token
            if not token:
                break
            self.check(pages < 10, "ListInstanceHistory: paging does not end")
        got = [(e.version, e.action_id, e.from_state, e.to_state, e.request_id) for e in entries]
        self.equal(got, [(1, "", "", "draft", self.start_request_id),
                         (2, "submit", "draft", "review", self.submit_request_id)], "ListInstanceHistory entries")
        self.check(all(e.HasField("time") for e in entries), "ListInstanceHistory: every entry has a time")

    def rejected_action(self):
        # "publish" runs only from "approved"; the instance is in "review", where approve and reject are allowed.
        status, found = self.expect_error("ExecuteAction", self.pb.ExecuteActionRequest(
            instance_id=self.instance_id, action_id="publish"), grpc.StatusCode.FAILED_PRECONDITION)
        info = found["ErrorInfo"]
        self.equal(info.reason, "ACTION_NOT_ALLOWED", "ErrorInfo.reason")
        self.equal(info.metadata.get("current_state"), "review", "ErrorInfo.metadata[current_state]")
        self.check("PreconditionFailure" in found, f"no google.rpc.PreconditionFailure among the details: {status}")
        current, allowed = self.current_state_violation(found["PreconditionFailure"])
        self.equal(current, "review", "PreconditionFailure CURRENT_STATE subject")
        self.equal(allowed, ["approve", "reject"], "PreconditionFailure CURRENT_STATE allowed actions")

    def current_state_violation(self, failure):
        """CURRENT_STATE (subject = the current state) and one ALLOWED_ACTION violation per allowed action."""
        found = [v for v in failure.violations if v.type == "CURRENT_STATE"]
        self.check(len(found) == 1, f"PreconditionFailure should hold one CURRENT_STATE violation: {failure}")
        failed = [v for v in failure.violations if v.type not in ("CURRENT_STATE", "ALLOWED_ACTION")]
        self.check(len(failed) >= 1, f"PreconditionFailure should also name the failed condition: {failure}")
        allowed = [v.subject for v in failure.violations if v.type == "ALLOWED_ACTION"]
        return found[0].subject, sorted(allowed)

    def version_conflict(self):
        status, found = self.expect_error("ExecuteAction", self.pb.ExecuteActionRequest(
            instance_id=self.instance_id, action_id="approve", expected_version=1), grpc.StatusCode.ABORTED)
        info = found["ErrorInfo"]
        self.equal(info.reason, "VERSION_MISMATCH", "ErrorInfo.reason")
        self.equal(info.metadata.get("current_version"), "2", "ErrorInfo.metadata[current_version]")
        # What a client does on ABORTED: read again, then decide whether the action still applies.
        actions = self.call("ListAvailableActions", self.pb.ListAvailableActionsRequest(instance_id=self.instance_id))
        self.equal(actions.instance_version, 2, "ListAvailableActions: instance_version after the conflict")
        self.equal(sorted(a.id for a in actions.actions), ["approve", "reject"], "ListAvailableActions: actions")

    def watch(self):
        """WatchInstance from version 0: a SNAPSHOT first, then each transition, then OK at the final state."""
        # A real watcher sets no deadline and reconnects with the last version + 1; this test bounds the wait.
        stream = self.stub.WatchInstance(
            self.pb.WatchInstanceRequest(instance_id=self.instance_id, start_version=0), timeout=self.deadline * 3)
        try:
            events = []
            first = next(stream).event
            events.append(first)
            self.equal(first.type, self.res.EVENT_TYPE_SNAPSHOT, "first WatchInstance event type")
            self.equal((first.instance.version, first.instance.current_state), (2, "review"), "snapshot instance")
            self.equal(first.entry.version, 2, "snapshot entry (the latest history entry) version")
            # The snapshot proves the watch is registered: every transition from here on must arrive.
            for step, action in enumerate(["approve", "publish"], start=3):
                self.call("ExecuteAction", self.pb.ExecuteActionRequest(
                    instance_id=self.instance_id, action_id=action, expected_version=step - 1))
            for event in stream:
                events.append(event.event)
        except grpc.RpcError as err:
            raise Mismatch(f"WatchInstance failed with {err.code().name}: {err.details()}") from None
        self.equal(stream.code(), grpc.StatusCode.OK, "WatchInstance final status")
        got = [(e.type, e.instance.version, e.instance.current_state, e.entry.action_id) for e in events[1:]]
        transitioned = self.res.EVENT_TYPE_TRANSITIONED
        self.equal(got, [(transitioned, 3, "approved", "approve"), (transitioned, 4, "published", "publish")],
                   "WatchInstance events after the snapshot (type, version, state, action)")
        self.equal(events[-1].instance.status, self.res.INSTANCE_STATUS_COMPLETED, "last event's instance status")
        revisions = [e.revision for e in events]
        self.check(all(a < b for a, b in zip(revisions[1:], revisions[2:])),
                   f"event revisions must increase: {revisions}")

    def watch_replay(self):
        """A reconnecting watcher passes a start_version: history replays from there and ends OK at the final state."""
        stream = self.stub.WatchInstance(
            self.pb.WatchInstanceRequest(instance_id=self.instance_id, start_version=1), timeout=self.deadline)
        try:
            events = [r.event for r in stream]
        except grpc.RpcError as err:
            raise Mismatch(f"WatchInstance from version 1 failed with {err.code().name}: {err.details()}") from None
        self.equal(stream.code(), grpc.StatusCode.OK, "WatchInstance (replay) final status")
        res = self.res
        got = [(e.type, e.instance.version) for e in events]
        self.equal(got, [(res.EVENT_TYPE_STARTED, 1), (res.EVENT_TYPE_TRANSITIONED, 2),
                         (res.EVENT_TYPE_TRANSITIONED, 3), (res.EVENT_TYPE_TRANSITIONED, 4)],
                   "WatchInstance from version 1 of a completed instance (type, version)")

    def completed_instance(self):
        status, found = self.expect_error("ExecuteAction", self.pb.ExecuteActionRequest(
            instance_id=self.instance_id, action_id="approve"), grpc.StatusCode.FAILED_PRECONDITION)
        self.equal(found["ErrorInfo"].reason, "INSTANCE_COMPLETED", "ErrorInfo.reason on a completed instance")
        self.check("PreconditionFailure" in found, f"no google.rpc.PreconditionFailure among the details: {status}")
        current, allowed = self.current_state_violation(found["PreconditionFailure"])
        self.equal((current, allowed), ("published", []), "CURRENT_STATE of a completed instance (state, allowed actions)")

    # ------------------------------------------------------------------ issue 12: notes, the past, migration

    def notes(self):
        """A comment and a google.protobuf.Struct payload on an action come back in its history entry."""
        started = self.call("StartInstance", self.pb.StartInstanceRequest(
            definition_id=self.definition_id, definition_version=1, comment="opened from Python"))
        self.notes_id = started.instance.id
        self.equal((started.transition.version, started.transition.comment, started.transition.HasField("payload")),
                   (1, "opened from Python", False), "StartInstance transition (version, comment, has payload)")
        payload = self.struct_pb2.Struct()
        payload.update({"reason": "looks good ✓ — 日本語", "score": 4.5, "pages": 12, "tags": ["a", "b"],
                        "nested": {"ok": True, "nothing": None, "list": [1, "two", False, {"deep": []}]}})
        self.payload = payload
        comment = "Submitted by the Python journey: ünïcode 😀"
        done = self.call("ExecuteAction", self.pb.ExecuteActionRequest(
            instance_id=self.notes_id, action_id="submit", comment=comment, payload=payload))
        t = done.transition
        self.equal((t.version, t.action_id, t.comment, t.actor), (2, "submit", comment, ""),
                   "ExecuteAction transition (version, action, comment, actor without authentication)")
        self.equal(t.payload, payload, "ExecuteAction transition payload")
        history = self.call("ListInstanceHistory", self.pb.ListInstanceHistoryRequest(instance_id=self.notes_id))
        entry = history.entries[1]
        self.equal((entry.version, entry.comment), (2, comment), "ListInstanceHistory entry 2 (version, comment)")
        self.equal(entry.payload, payload, "ListInstanceHistory entry 2 payload")
        self.equal(dict(entry.payload)["nested"]["list"][1], "two", "payload read back as Python values")
        self.check(not history.entries[0].HasField("payload"), "the start entry has no payload (none was sent)")
        view = self.call("GetInstance", self.pb.GetInstanceRequest(instance_id=self.notes_id))
        self.equal(view.recent_history[-1].payload, payload, "GetInstance recent_history payload")

    def as_of_version(self):
        """GetInstance with as_of_version: the instance as it stood right after that version."""
        then = self.call("GetInstance", self.pb.GetInstanceRequest(instance_id=self.notes_id, as_of_version=1))
        self.equal((then.instance.version, then.instance.current_state, then.current_state.id),
                   (1, "draft", "draft"), "GetInstance as_of_version 1 (version, state)")
        self.equal([a.id for a in then.available_actions], ["submit"], "GetInstance as_of_version 1: available_actions")
        self.equal([e.version for e in then.recent_history], [1], "GetInstance as_of_version 1: recent_history")
        now = self.call("GetInstance", self.pb.GetInstanceRequest(instance_id=self.notes_id, as_of_version=0))
        self.equal((now.instance.version, now.instance.current_state), (2, "review"), "GetInstance as_of_version 0 = now")
        status, found = self.expect_error("GetInstance", self.pb.GetInstanceRequest(
            instance_id=self.notes_id, as_of_version=3), grpc.StatusCode.OUT_OF_RANGE)
        self.equal(found["ErrorInfo"].reason, "VERSION_OUT_OF_RANGE", "ErrorInfo.reason above the current version")
        self.equal(found["ErrorInfo"].metadata.get("current_version"), "2", "ErrorInfo.metadata[current_version]")

    def create_version_2(self):
        """Version 2 drops "approved" (and the actions through it) and adds fast_publish from review."""
        res = self.res
        definition = res.Definition(
            id=self.definition_id,
            version=2,
            name="Document review (Python journey), version 2",
            states=[
                res.State(id="draft", name="Draft", initial=True),
                res.State(id="review", name="In review"),
                res.State(id="published", name="Published", final=True),
                res.State(id="rejected", name="Rejected", final=True),
            ],
            actions=[
                res.Action(id="submit", name="Submit", from_states=["draft"], to_state="review"),
                res.Action(id="reject", name="Reject", from_states=["review"], to_state="rejected"),
                res.Action(id="fast_publish", name="Publish at once", from_states=["review"], to_state="published"),
            ],
        )
        created = self.call("CreateDefinition", self.pb.CreateDefinitionRequest(definition=definition))
        self.equal((created.created, created.definition.version), (True, 2), "CreateDefinition version 2 (created, version)")

    def migrate(self):
        """MigrateInstance to version 2: the entry records the move, a watcher gets a MIGRATED event."""
        # From the next version: the migration arrives by replay or live, whichever comes first.
        stream = self.stub.WatchInstance(
            self.pb.WatchInstanceRequest(instance_id=self.notes_id, start_version=3), timeout=self.deadline * 3)
        try:
            migrated = self.call("MigrateInstance", self.pb.MigrateInstanceRequest(
                instance_id=self.notes_id, to_definition_version=2, expected_version=2,
                comment="pick up fast_publish", payload=self.payload))
            i, t = migrated.instance, migrated.transition
            self.equal((i.definition_version, i.version, i.current_state), (2, 3, "review"),
                       "MigrateInstance instance (definition_version, version, state)")
            self.equal((t.version, t.action_id, t.from_state, t.to_state, t.comment),
                       (3, "", "review", "review", "pick up fast_publish"), "MigrateInstance transition")
            self.check(t.HasField("migration"), "MigrateInstance transition has a migration")
            self.equal((t.migration.from_definition_version, t.migration.to_definition_version), (1, 2),
                       "MigrateInstance transition.migration (from, to)")
            self.equal(t.payload, self.payload, "MigrateInstance transition payload")
            event = next(stream).event
        except grpc.RpcError as err:
            raise Mismatch(f"WatchInstance / MigrateInstance failed with {err.code().name}: {err.details()}") from None
        finally:
            stream.cancel()
        self.equal((event.type, event.instance.version, event.instance.definition_version),
                   (self.res.EVENT_TYPE_MIGRATED, 3, 2), "WatchInstance event after the migration (type, version, definition)")
        self.equal(event.entry, t, "the MIGRATED event's entry is the migration's history entry")
        view = self.call("GetInstance", self.pb.GetInstanceRequest(instance_id=self.notes_id))
        self.equal(sorted(a.id for a in view.available_actions), ["fast_publish", "reject"],
                   "GetInstance after the migration: version 2's actions")
        before = self.call("GetInstance", self.pb.GetInstanceRequest(instance_id=self.notes_id, as_of_version=2))
        self.equal(before.instance.definition_version, 1, "GetInstance as_of_version 2: the definition version before")
        published = self.call("ExecuteAction", self.pb.ExecuteActionRequest(instance_id=self.notes_id, action_id="fast_publish"))
        self.equal(published.instance.status, self.res.INSTANCE_STATUS_COMPLETED, "fast_publish (only in version 2) completes it")

    def migrate_refused(self):
        """A migration to a version without the current state: FAILED_PRECONDITION with a PreconditionFailure."""
        started = self.call("StartInstance", self.pb.StartInstanceRequest(definition_id=self.definition_id, definition_version=1))
        instance_id = started.instance.id
        for action in ("submit", "approve"):
            self.call("ExecuteAction", self.pb.ExecuteActionRequest(instance_id=instance_id, action_id=action))
        status, found = self.expect_error("MigrateInstance", self.pb.MigrateInstanceRequest(
            instance_id=instance_id, to_definition_version=2), grpc.StatusCode.FAILED_PRECONDITION)
        info = found["ErrorInfo"]
        self.equal(info.reason, "MIGRATION_STATE_MISSING", "ErrorInfo.reason")
        self.equal((info.metadata.get("current_state"), info.metadata.get("to_definition_version")), ("approved", "2"),
                   "ErrorInfo.metadata (current_state, to_definition_version)")
        self.check("PreconditionFailure" in found, f"no google.rpc.PreconditionFailure among the details: {status}")
        failure = found["PreconditionFailure"]
        current, allowed = self.current_state_violation(failure)
        self.equal((current, allowed), ("approved", ["publish"]), "PreconditionFailure (current state, allowed actions)")
        self.check(any(v.type == "STATE" and v.subject == "approved" for v in failure.violations),
                   f"PreconditionFailure should name the missing state: {failure}")
        view = self.call("GetInstance", self.pb.GetInstanceRequest(instance_id=instance_id))
        self.equal((view.instance.version, view.instance.definition_version), (3, 1), "a refused migration changes nothing")

    # ------------------------------------------------------------------ issue 20: instance data

    def struct(self, values: dict):
        """A google.protobuf.Struct holding `values` (numbers become doubles, as JSON's do)."""
        out = self.struct_pb2.Struct()
        out.update(values)
        return out

    def data_definition(self):
        """samples/insurance-claim.json under a name of this run: a variables schema, a route, a guard, a payload schema."""
        with open(REPO / "samples" / "insurance-claim.json", encoding="utf-8") as f:
            sample = json.load(f)["definition"]
        sample["id"] = self.claim_definition_id = f"py-claim-{self.suffix}"
        definition = self.json_format.ParseDict(sample, self.res.Definition())
        created = self.call("CreateDefinition", self.pb.CreateDefinitionRequest(definition=definition))
        self.equal((created.created, created.definition.version), (True, 1), "CreateDefinition insurance claim (created, version)")
        d = created.definition
        self.check(d.HasField("variables_schema"), "CreateDefinition: the definition keeps its variables_schema")
        self.equal(sorted(d.variables_schema["required"]), ["amount", "customer"], "variables_schema.required read back from the Struct")
        actions = {a.id: a for a in d.actions}
        self.equal([(r.when, r.to_state) for r in actions["submit"].routes], [("vars.amount >= 1000.0", "director_review")],
                   "submit's routes (when, to_state)")
        self.equal(actions["approve"].guard, "state == 'manager_review' || 'director' in roles", "approve's guard")
        self.equal(dict(actions["approve"].assign), {"approved_by": "actor"}, "approve's assign")
        self.check(actions["reject"].HasField("payload_schema"), "reject keeps its payload_schema")

    def data_start(self):
        """StartInstance with variables: they come back as a Struct, on the instance and as the start's variables_set."""
        self.claim_id = f"py-claim-{self.suffix}-1"
        variables = self.struct({"customer": "ACME", "amount": 250})
        started = self.call("StartInstance", self.pb.StartInstanceRequest(
            definition_id=self.claim_definition_id, instance_id=self.claim_id, variables=variables))
        i, t = started.instance, started.transition
        self.equal((i.id, i.version, i.current_state), (self.claim_id, 1, "draft"), "StartInstance (id, version, state)")
        self.check(isinstance(i.variables, self.struct_pb2.Struct), f"instance.variables should be a Struct: {type(i.variables)}")
        self.equal(i.variables, variables, "StartInstance instance.variables")
        self.equal(t.variables_set, variables, "StartInstance transition.variables_set (the initial variables)")
        self.equal(dict(i.variables), {"customer": "ACME", "amount": 250.0}, "variables read back as Python values")
        # Variables the schema refuses: INVALID_ARGUMENT with a field violation naming the variable.
        status, found = self.expect_error("StartInstance", self.pb.StartInstanceRequest(
            definition_id=self.claim_definition_id, instance_id=f"{self.claim_id}-bad",
            variables=self.struct({"customer": "ACME", "amount": "a lot"})), grpc.StatusCode.INVALID_ARGUMENT)
        self.equal(found["ErrorInfo"].reason, "INVALID_REQUEST", "ErrorInfo.reason for variables the schema refuses")
        self.check("BadRequest" in found, f"no google.rpc.BadRequest among the details: {status}")
        self.equal([v.field for v in found["BadRequest"].field_violations], ["variables.amount"], "BadRequest field of the bad variable")

    def data_routed(self):
        """amend assigns the payload's amount; submit's route then sends 12,000 to director_review."""
        amended = self.call("ExecuteAction", self.pb.ExecuteActionRequest(
            instance_id=self.claim_id, action_id="amend", payload=self.struct({"amount": 12000})))
        self.equal((amended.instance.version, amended.instance.current_state), (2, "draft"), "amend (version, state)")
        self.equal(amended.transition.variables_set, self.struct({"amount": 12000}), "amend transition.variables_set")
        submitted = self.call("ExecuteAction", self.pb.ExecuteActionRequest(
            instance_id=self.claim_id, action_id="submit", expected_version=2))
        i, t = submitted.instance, submitted.transition
        self.equal((i.version, i.current_state), (3, "director_review"), "submit of 12,000 (version, routed state)")
        self.equal((t.action_id, t.from_state, t.to_state), ("submit", "draft", "director_review"), "submit transition (action, from, to)")
        self.check(isinstance(i.variables, self.struct_pb2.Struct), f"instance.variables should be a Struct: {type(i.variables)}")
        self.equal(i.variables, self.struct({"customer": "ACME", "amount": 12000}), "ExecuteAction instance.variables")
        self.check(not t.HasField("variables_set"), "submit assigns nothing: its entry has no variables_set")
        # The same action on a small claim takes no route: its to_state.
        small = self.call("StartInstance", self.pb.StartInstanceRequest(
            definition_id=self.claim_definition_id, instance_id=f"{self.claim_id}-small",
            variables=self.struct({"customer": "Bob", "amount": 99.5})))
        routed = self.call("ExecuteAction", self.pb.ExecuteActionRequest(instance_id=small.instance.id, action_id="submit"))
        self.equal(routed.instance.current_state, "manager_review", "submit of 99.5 (no route true: to_state)")
        then = self.call("GetInstance", self.pb.GetInstanceRequest(instance_id=self.claim_id, as_of_version=1))
        self.equal(then.instance.variables, self.struct({"customer": "ACME", "amount": 250}), "GetInstance as_of_version 1: the variables then")

    def data_guard_failed(self):
        """approve without a director's role: FAILED_PRECONDITION / GUARD_FAILED, the first violation the guard."""
        guard = "state == 'manager_review' || 'director' in roles"
        status, found = self.expect_error("ExecuteAction", self.pb.ExecuteActionRequest(
            instance_id=self.claim_id, action_id="approve"), grpc.StatusCode.FAILED_PRECONDITION)
        info = found["ErrorInfo"]
        self.equal(info.reason, "GUARD_FAILED", "ErrorInfo.reason")
        self.equal((info.metadata.get("action_id"), info.metadata.get("instance_id"), info.metadata.get("current_state")),
                   ("approve", self.claim_id, "director_review"), "ErrorInfo.metadata (action_id, instance_id, current_state)")
        self.check(guard in status.message, f"the message should quote the guard: {status.message!r}")
        self.check("PreconditionFailure" in found, f"no google.rpc.PreconditionFailure among the details: {status}")
        failure = found["PreconditionFailure"]
        first = failure.violations[0]
        self.equal((first.type, first.subject), ("GUARD", "approve"), "first PreconditionFailure violation (type, subject)")
        self.check(guard in first.description, f"the GUARD violation should quote the guard: {first.description!r}")
        current, allowed = self.current_state_violation(failure)
        self.equal((current, allowed), ("director_review", ["approve", "reject"]), "PreconditionFailure (current state, allowed actions)")
        view = self.call("GetInstance", self.pb.GetInstanceRequest(instance_id=self.claim_id))
        self.equal((view.instance.version, view.instance.current_state), (3, "director_review"), "a refused guard changes nothing")

    def data_payload(self):
        """reject's payload schema: PAYLOAD_INVALID with a field violation, then a reason the assignment keeps."""
        status, found = self.expect_error("ExecuteAction", self.pb.ExecuteActionRequest(
            instance_id=self.claim_id, action_id="reject", payload=self.struct({"reason": "no"})), grpc.StatusCode.INVALID_ARGUMENT)
        self.equal(found["ErrorInfo"].reason, "PAYLOAD_INVALID", "ErrorInfo.reason")
        self.check("BadRequest" in found, f"no google.rpc.BadRequest among the details: {status}")
        self.equal([v.field for v in found["BadRequest"].field_violations], ["payload.reason"], "BadRequest fields")
        done = self.call("ExecuteAction", self.pb.ExecuteActionRequest(
            instance_id=self.claim_id, action_id="reject", payload=self.struct({"reason": "no receipt attached"})))
        self.equal((done.instance.current_state, done.instance.status), ("rejected", self.res.INSTANCE_STATUS_COMPLETED),
                   "reject (state, status)")
        self.equal(done.transition.variables_set, self.struct({"rejection_reason": "no receipt attached"}), "reject variables_set")
        self.equal(dict(done.instance.variables)["rejection_reason"], "no receipt attached", "the variables keep the reason")
        history = self.call("ListInstanceHistory", self.pb.ListInstanceHistoryRequest(instance_id=self.claim_id))
        self.equal([(e.version, e.action_id, e.to_state, sorted(e.variables_set.keys())) for e in history.entries],
                   [(1, "", "draft", ["amount", "customer"]), (2, "amend", "draft", ["amount"]),
                    (3, "submit", "director_review", []), (4, "reject", "rejected", ["rejection_reason"])],
                   "ListInstanceHistory (version, action, to_state, variables set)")

    def run(self) -> None:
        for step in (self.create_definition, self.start_instance, self.execute, self.history, self.rejected_action,
                     self.version_conflict, self.watch, self.watch_replay, self.completed_instance,
                     self.notes, self.as_of_version, self.create_version_2, self.migrate, self.migrate_refused,
                     self.data_definition, self.data_start, self.data_routed, self.data_guard_failed, self.data_payload):
            self.step = step.__name__
            try:
                step()
            except grpc.RpcError as err:
                raise Mismatch(f"unexpected {err.code().name}: {err.details()}") from None
            print(f"ok   {self.step}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("address", help="host:port of a running workflow server")
    parser.add_argument("--buf", default=str(REPO / "node_modules" / ".bin" / "buf"), help="buf executable")
    parser.add_argument("--deadline", type=float, default=10.0, help="deadline of each unary call, in seconds")
    parser.add_argument("--cacert", help="PEM CA that signed the server's certificate: connect with TLS")
    parser.add_argument("--cert", help="PEM client certificate (mutual TLS)")
    parser.add_argument("--key", help="PEM private key of --cert")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="workflow-py-stubs-") as out:
        try:
            generate_stubs(args.buf, Path(out))
        except (RuntimeError, OSError) as exc:
            print(f"journey FAILED generating stubs: {exc}", file=sys.stderr)
            return 2
        sys.path.insert(0, out)
        # grpc honours http_proxy; a test server on loopback must never be reached through a proxy.
        options = [("grpc.enable_http_proxy", 0)]
        if args.cacert:
            def read(path):
                with open(path, "rb") as f:
                    return f.read()
            creds = grpc.ssl_channel_credentials(
                root_certificates=read(args.cacert),
                private_key=read(args.key) if args.key else None,
                certificate_chain=read(args.cert) if args.cert else None)
            channel = grpc.secure_channel(args.address, creds, options=options)
        else:
            channel = grpc.insecure_channel(args.address, options=options)
        with channel:
            try:
                grpc.channel_ready_future(channel).result(timeout=args.deadline)
            except grpc.FutureTimeoutError:
                print(f"journey FAILED: no server at {args.address} within {args.deadline}s", file=sys.stderr)
                return 1
            journey = Journey(channel, args.deadline)
            try:
                journey.run()
            except Mismatch as exc:
                print(f"journey FAILED at step {journey.step}: {exc}", file=sys.stderr)
                return 1
    print(f"journey passed against {args.address}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
