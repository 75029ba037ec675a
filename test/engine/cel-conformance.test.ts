// Runs the cel-spec conformance suites (issue 20; @bufbuild/cel-spec, upstream cel-spec v0.25.1) through our CEL pipeline: cel-js with the data rules' Environment options, checkExpression's refusals and type check, then evaluate(). SKIP names every test known to fail, with why it does not matter here; a failure off the list fails, and so does a listed test that passes (the list stays true when cel-js is upgraded).
import { Environment } from "@marcbachmann/cel-js";
import { tests } from "@bufbuild/cel-spec/testdata/conformance.js";
import type { SerializedIncrementalTestSuite } from "@bufbuild/cel-spec/testdata/tests.js";
import { afterAll, describe, expect, it } from "vitest";
import { ENVIRONMENT_OPTIONS, checkExpression, evaluate, type ExpressionContext } from "../../src/engine/expressions.js";

const SUITES = ["basic", "comparisons", "logic", "string", "lists"];

// Why tests fail with cel-js in our environment, and why that does not matter for the data rules.
const PROTO = "protobuf messages and wrappers (TestAllTypes, google.protobuf.*Value): cel-js has none, our data is JSON";
const NUMERIC = "int/uint/double equality across types: numbers are doubles here, no schema yields an int or uint";
const UINT = "uint in int or double lists, uint index: numbers are doubles here, no schema yields a uint";
const BYTES = "bytes ordering, non-ASCII bytes literals: JSON has no bytes, no schema yields them";
const DOT = "double literal without a leading digit (.99): write 0.99";
const BIG = "int against double near 2^63: numbers are doubles here, ints come from size() and the like";
const CHECKED = "the test disables the type checker: ours always type-checks and refuses what does not check";
const HOMOGENEOUS = "mixed-type list or map literal (or one with a null): cel-js's homogeneous literal check, which we keep";
const MATCHES = "matches() is refused at creation (a backtracking RegExp can take unbounded time)";

/** Conformance test (suite/section/name) -> why it fails with cel-js in our environment. */
const SKIP: Record<string, string> = {
  "basic/self_eval_nonzeroish/self_eval_bytes_escape": BYTES,
  "basic/variables/unbound_is_runtime_error": CHECKED,
  "basic/functions/unbound_is_runtime_error": CHECKED,
  "comparisons/eq_literal/eq_bytes": BYTES,
  "comparisons/eq_literal/not_eq_list_null": HOMOGENEOUS,
  "comparisons/eq_literal/eq_list_mixed_type_numbers": NUMERIC,
  "comparisons/eq_literal/not_eq_list_mixed_type_numbers": NUMERIC,
  "comparisons/eq_literal/not_eq_list_length": CHECKED,
  "comparisons/eq_literal/not_eq_list_false_vs_types": HOMOGENEOUS,
  "comparisons/eq_literal/not_eq_map_null": HOMOGENEOUS,
  "comparisons/eq_literal/eq_map_mixed_type_numbers": NUMERIC,
  "comparisons/eq_literal/not_eq_map_false_vs_types": HOMOGENEOUS,
  "comparisons/eq_literal/eq_mixed_types": NUMERIC,
  "comparisons/eq_literal/eq_list_elem_mixed_types": NUMERIC,
  "comparisons/eq_literal/eq_map_value_mixed_types": HOMOGENEOUS,
  "comparisons/eq_literal/eq_dyn_json_null": PROTO,
  "comparisons/eq_literal/not_eq_dyn_proto2_msg_null": PROTO,
  "comparisons/eq_literal/not_eq_dyn_proto3_msg_null": PROTO,
  "comparisons/eq_literal/not_eq_list_elem_null": HOMOGENEOUS,
  "comparisons/eq_literal/not_eq_map_value_null": HOMOGENEOUS,
  "comparisons/eq_wrapper/eq_bool": PROTO,
  "comparisons/eq_wrapper/eq_bool_empty": PROTO,
  "comparisons/eq_wrapper/eq_bool_not_null": PROTO,
  "comparisons/eq_wrapper/eq_bool_proto2_null": PROTO,
  "comparisons/eq_wrapper/eq_bool_proto3_null": PROTO,
  "comparisons/eq_wrapper/eq_bytes": PROTO,
  "comparisons/eq_wrapper/eq_bytes_empty": PROTO,
  "comparisons/eq_wrapper/eq_bytes_not_null": PROTO,
  "comparisons/eq_wrapper/eq_bytes_proto2_null": PROTO,
  "comparisons/eq_wrapper/eq_bytes_proto3_null": PROTO,
  "comparisons/eq_wrapper/eq_double": PROTO,
  "comparisons/eq_wrapper/eq_double_empty": PROTO,
  "comparisons/eq_wrapper/eq_double_not_null": PROTO,
  "comparisons/eq_wrapper/eq_double_proto2_null": PROTO,
  "comparisons/eq_wrapper/eq_double_proto3_null": PROTO,
  "comparisons/eq_wrapper/eq_float": PROTO,
  "comparisons/eq_wrapper/eq_float_empty": PROTO,
  "comparisons/eq_wrapper/eq_float_not_null": PROTO,
  "comparisons/eq_wrapper/eq_float_proto2_null": PROTO,
  "comparisons/eq_wrapper/eq_float_proto3_null": PROTO,
  "comparisons/eq_wrapper/eq_int32": PROTO,
  "comparisons/eq_wrapper/eq_int32_empty": PROTO,
  "comparisons/eq_wrapper/eq_int32_not_null": PROTO,
  "comparisons/eq_wrapper/eq_int32_proto2_null": PROTO,
  "comparisons/eq_wrapper/eq_int32_proto3_null": PROTO,
  "comparisons/eq_wrapper/eq_int64": PROTO,
  "comparisons/eq_wrapper/eq_int64_empty": PROTO,
  "comparisons/eq_wrapper/eq_int64_not_null": PROTO,
  "comparisons/eq_wrapper/eq_int64_proto2_null": PROTO,
  "comparisons/eq_wrapper/eq_int64_proto3_null": PROTO,
  "comparisons/eq_wrapper/eq_string": PROTO,
  "comparisons/eq_wrapper/eq_string_empty": PROTO,
  "comparisons/eq_wrapper/eq_string_not_null": PROTO,
  "comparisons/eq_wrapper/eq_string_proto2_null": PROTO,
  "comparisons/eq_wrapper/eq_string_proto3_null": PROTO,
  "comparisons/eq_wrapper/eq_uint32": PROTO,
  "comparisons/eq_wrapper/eq_uint32_empty": PROTO,
  "comparisons/eq_wrapper/eq_uint32_not_null": PROTO,
  "comparisons/eq_wrapper/eq_uint32_proto2_null": PROTO,
  "comparisons/eq_wrapper/eq_uint32_proto3_null": PROTO,
  "comparisons/eq_wrapper/eq_uint64": PROTO,
  "comparisons/eq_wrapper/eq_uint64_empty": PROTO,
  "comparisons/eq_wrapper/eq_uint64_not_null": PROTO,
  "comparisons/eq_wrapper/eq_uint64_proto2_null": PROTO,
  "comparisons/eq_wrapper/eq_uint64_proto3_null": PROTO,
  "comparisons/eq_wrapper/eq_proto2": PROTO,
  "comparisons/eq_wrapper/eq_proto3": PROTO,
  "comparisons/eq_wrapper/eq_proto2_missing_fields_neq": PROTO,
  "comparisons/eq_wrapper/eq_proto3_missing_fields_neq": PROTO,
  "comparisons/eq_wrapper/eq_proto_nan_equal": PROTO,
  "comparisons/eq_wrapper/eq_proto_different_types": PROTO,
  "comparisons/eq_wrapper/eq_proto2_any_unpack_equal": PROTO,
  "comparisons/eq_wrapper/eq_proto2_any_unpack_not_equal": PROTO,
  "comparisons/eq_wrapper/eq_proto2_any_unpack_bytewise_fallback_not_equal": PROTO,
  "comparisons/eq_wrapper/eq_proto2_any_unpack_bytewise_fallback_equal": PROTO,
  "comparisons/eq_wrapper/eq_proto3_any_unpack_equal": PROTO,
  "comparisons/eq_wrapper/eq_proto3_any_unpack_not_equal": PROTO,
  "comparisons/eq_wrapper/eq_proto3_any_unpack_bytewise_fallback_not_equal": PROTO,
  "comparisons/eq_wrapper/eq_proto3_any_unpack_bytewise_fallback_equal": PROTO,
  "comparisons/ne_literal/not_ne_bytes": BYTES,
  "comparisons/ne_literal/ne_mixed_types": NUMERIC,
  "comparisons/ne_literal/ne_proto2": PROTO,
  "comparisons/ne_literal/ne_proto3": PROTO,
  "comparisons/ne_literal/ne_proto2_missing_fields_neq": PROTO,
  "comparisons/ne_literal/ne_proto3_missing_fields_neq": PROTO,
  "comparisons/ne_literal/ne_proto_nan_not_equal": PROTO,
  "comparisons/ne_literal/ne_proto_different_types": PROTO,
  "comparisons/ne_literal/ne_proto2_any_unpack": PROTO,
  "comparisons/ne_literal/ne_proto2_any_unpack_bytewise_fallback": PROTO,
  "comparisons/ne_literal/ne_proto3_any_unpack": PROTO,
  "comparisons/ne_literal/ne_proto3_any_unpack_bytewise_fallback": PROTO,
  "comparisons/lt_literal/lt_bytes": BYTES,
  "comparisons/lt_literal/not_lt_bytes_same": BYTES,
  "comparisons/lt_literal/not_lt_bytes_width": BYTES,
  "comparisons/lt_literal/not_lt_dyn_int_big_lossy_double": BIG,
  "comparisons/gt_literal/not_gt_double": DOT,
  "comparisons/gt_literal/gt_bytes_one": BYTES,
  "comparisons/gt_literal/gt_bytes_one_to_empty": BYTES,
  "comparisons/gt_literal/not_gt_bytes_sorting": BYTES,
  "comparisons/gt_literal/not_gt_dyn_big_double_int": BIG,
  "comparisons/lte_literal/lte_bytes_empty": BYTES,
  "comparisons/lte_literal/not_lte_bytes_length": BYTES,
  "comparisons/lte_literal/lte_dyn_big_double_int": BIG,
  "comparisons/gte_literal/gte_bytes_to_empty": BYTES,
  "comparisons/gte_literal/not_gte_bytes_empty_to_nonempty": BYTES,
  "comparisons/gte_literal/gte_bytes_samelength": BYTES,
  "comparisons/gte_literal/gte_dyn_int_big_lossy_double": BIG,
  "comparisons/in_list_literal/elem_in_mixed_type_list": HOMOGENEOUS,
  "comparisons/in_list_literal/elem_in_mixed_type_list_cross_type": HOMOGENEOUS,
  "comparisons/in_map_literal/key_in_mixed_key_type_map": HOMOGENEOUS,
  "comparisons/in_map_literal/key_in_mixed_key_type_map_cross_type": HOMOGENEOUS,
  "comparisons/bound/bytes_gt_left_false": BYTES,
  "logic/conditional/mixed_type": CHECKED,
  "logic/AND/short_circuit_type_left": CHECKED,
  "logic/AND/short_circuit_type_right": CHECKED,
  "logic/OR/short_circuit_type_left": CHECKED,
  "logic/OR/short_circuit_type_right": CHECKED,
  "string/matches/basic": MATCHES,
  "string/matches/empty_target": MATCHES,
  "string/matches/empty_arg": MATCHES,
  "string/matches/empty_empty": MATCHES,
  "string/matches/re_concat": MATCHES,
  "string/matches/re_alt": MATCHES,
  "string/matches/re_rep": MATCHES,
  "string/matches/unicode": MATCHES,
  "string/matches/unicode_smp": MATCHES,
  "lists/index/zero_based_uint": UINT,
  "lists/in/uint_in_ints": UINT,
  "lists/in/uint_in_doubles": UINT,
  "lists/in/int_in_uints": UINT,
  "lists/in/double_in_uints": UINT,
};

/** A conformance value (cel.expr.Value in JSON form). */
type Value = Record<string, unknown>;

/** The tests' fields we read (cel.expr.conformance.test.SimpleTest in JSON form). */
interface SimpleTest {
  name: string;
  expr: string;
  disableCheck?: boolean;
  container?: string;
  typeEnv?: { name: string; ident?: { type: Value } }[];
  bindings?: Record<string, { value: Value }>;
  value?: Value;
  evalError?: unknown;
}

class Unsupported extends Error {}

// cel-js does not export its uint class: take it from a uint literal.
const CelUint = (new Environment().evaluate("0u") as object).constructor as new (v: bigint) => { valueOf(): bigint };

const hexOf = (bytes: Uint8Array): string => Buffer.from(bytes).toString("hex");
const numberForm = (n: number): string => (Object.is(n, -0) ? "0" : String(n));
const keyForm = (canon: string): string => canon.replace(/^(int|uint|string|bool):/, "").replace(/^"(.*)"$/, "$1");

/** An expected value's canonical form: kind and value (an int is not a double). */
function expectedForm(v: Value): string {
  if ("int64Value" in v) return `int:${BigInt(v.int64Value as string)}`;
  if ("uint64Value" in v) return `uint:${BigInt(v.uint64Value as string)}`;
  if ("doubleValue" in v) return `double:${numberForm(Number(v.doubleValue))}`;
  if ("stringValue" in v) return `string:${JSON.stringify(v.stringValue)}`;
  if ("boolValue" in v) return `bool:${v.boolValue}`;
  if ("bytesValue" in v) return `bytes:${hexOf(Buffer.from(v.bytesValue as string, "base64"))}`;
  if ("nullValue" in v) return "null";
  if ("listValue" in v) return `[${(((v.listValue as Value).values ?? []) as Value[]).map(expectedForm).join(",")}]`;
  if ("mapValue" in v) {
    const entries = ((v.mapValue as Value).entries ?? []) as { key: Value; value: Value }[];
    return `{${entries.map((e) => `${keyForm(expectedForm(e.key))}=>${expectedForm(e.value)}`).sort().join(",")}}`;
  }
  if ("typeValue" in v) return `type:${v.typeValue}`;
  throw new Unsupported(`expected value ${Object.keys(v)[0]}`);
}

/** A cel-js result's canonical form, comparable with expectedForm(). */
function actualForm(v: unknown): string {
  if (typeof v === "bigint") return `int:${v}`;
  if (v instanceof CelUint) return `uint:${v.valueOf()}`;
  if (typeof v === "number") return `double:${numberForm(v)}`;
  if (typeof v === "string") return `string:${JSON.stringify(v)}`;
  if (typeof v === "boolean") return `bool:${v}`;
  if (v === null) return "null";
  if (v instanceof Uint8Array) return `bytes:${hexOf(v)}`;
  if (Array.isArray(v)) return `[${v.map(actualForm).join(",")}]`;
  if (v instanceof Map) return `{${[...v].map(([k, x]) => `${keyForm(actualForm(k))}=>${actualForm(x)}`).sort().join(",")}}`;
  if (typeof v === "object" && v.constructor.name === "Type") return `type:${String(v).replace(/^Type<|>$/g, "")}`;
  if (typeof v === "object") return `{${Object.entries(v).map(([k, x]) => `${k}=>${actualForm(x)}`).sort().join(",")}}`;
  return `?${typeof v}`;
}

/** A binding's value as cel-js takes it. */
function inputOf(v: Value): unknown {
  if ("int64Value" in v) return BigInt(v.int64Value as string);
  if ("uint64Value" in v) return new CelUint(BigInt(v.uint64Value as string));
  if ("doubleValue" in v) return Number(v.doubleValue);
  if ("stringValue" in v) return v.stringValue;
  if ("boolValue" in v) return v.boolValue;
  if ("bytesValue" in v) return new Uint8Array(Buffer.from(v.bytesValue as string, "base64"));
  if ("nullValue" in v) return null;
  if ("listValue" in v) return (((v.listValue as Value).values ?? []) as Value[]).map(inputOf);
  if ("mapValue" in v) {
    const entries = ((v.mapValue as Value).entries ?? []) as { key: Value; value: Value }[];
    return new Map(entries.map((e) => [inputOf(e.key), inputOf(e.value)]));
  }
  throw new Unsupported(`binding ${Object.keys(v)[0]}`);
}

const PRIMITIVES: Record<string, string> = { INT64: "int", UINT64: "uint", DOUBLE: "double", STRING: "string", BOOL: "bool", BYTES: "bytes" };

/** A declared type (cel.expr.Type in JSON form) as a cel-js type name. */
function typeName(t: Value): string {
  if (typeof t.primitive === "string" && PRIMITIVES[t.primitive]) return PRIMITIVES[t.primitive]!;
  if (t.listType) return `list<${typeName((t.listType as Value).elemType as Value)}>`;
  if (t.mapType) return `map<${typeName((t.mapType as Value).keyType as Value)}, ${typeName((t.mapType as Value).valueType as Value)}>`;
  if ("null" in t) return "null";
  throw new Unsupported(`declared type ${JSON.stringify(t)}`);
}

type Outcome = { ok: true } | { ok: false; detail: string };

/** Runs one conformance test the way the data rules run an expression. */
function runTest(t: SimpleTest): Outcome {
  const want = t.evalError ? "an error" : expectedForm(t.value ?? { boolValue: true });
  let got: string;
  try {
    const env = new Environment(ENVIRONMENT_OPTIONS);
    for (const d of t.typeEnv ?? []) {
      if (!d.ident) throw new Unsupported(`function declaration ${d.name}`);
      env.registerVariable(d.name, typeName(d.ident.type));
    }
    const problems: string[] = [];
    const compiled = checkExpression(
      env,
      { source: t.expr, field: "expr", what: "The expression", bool: false, hasVariablesSchema: true },
      (reason, _field, message) => problems.push(`${reason}: ${message}`),
    );
    if (!compiled) {
      got = `refused (${problems.join("; ")})`;
      return t.evalError ? { ok: true } : { ok: false, detail: `want ${want}, got ${got}` };
    }
    const bindings = Object.fromEntries(Object.entries(t.bindings ?? {}).map(([k, b]) => [k, inputOf(b.value)]));
    got = actualForm(evaluate(compiled, bindings as unknown as ExpressionContext));
  } catch (err) {
    if (err instanceof Unsupported) return { ok: false, detail: `not runnable: ${err.message}` };
    got = `error (${err instanceof Error ? err.message : String(err)})`;
    return t.evalError ? { ok: true } : { ok: false, detail: `want ${want}, got ${got}` };
  }
  return !t.evalError && got === want ? { ok: true } : { ok: false, detail: `want ${want}, got ${got}` };
}

/** The tests of a suite, by path suite/section/name. */
function testsOf(suite: SerializedIncrementalTestSuite, path: string): [string, SimpleTest][] {
  const out: [string, SimpleTest][] = [];
  for (const t of suite.tests ?? []) out.push([`${path}/${t.original.name}`, t.original as unknown as SimpleTest]);
  for (const s of suite.suites ?? []) out.push(...testsOf(s, `${path}/${s.name}`));
  return out;
}

const counts = { passed: 0, skipped: 0 };
const seen = new Set<string>();
const duplicates: string[] = [];

describe("cel-spec conformance, cel-js in the data rules' environment", () => {
  for (const name of SUITES) {
    const suite = tests.suites?.find((s) => s.name === name);
    it(`has the suite ${name}`, () => expect(suite).toBeDefined());
    if (!suite) continue;
    describe(name, () => {
      for (const [path, t] of testsOf(suite, name)) {
        if (seen.has(path)) duplicates.push(path);
        seen.add(path);
        const reason = SKIP[path];
        it(`${path}: ${t.expr}`, () => {
          const outcome = runTest(t);
          if (reason === undefined) {
            expect(outcome.ok ? "passes" : outcome.detail, `${path} (${t.expr})`).toBe("passes");
            counts.passed++;
          } else {
            expect(outcome.ok, `${path} now passes: remove it from SKIP (it was listed for: ${reason})`).toBe(false);
            counts.skipped++;
          }
        });
      }
    });
  }

  it("names every test once, and lists in SKIP only tests that exist", () => {
    expect(duplicates).toEqual([]);
    expect(Object.keys(SKIP).filter((p) => !seen.has(p))).toEqual([]);
  });

  afterAll(() => {
    console.log(`cel-spec conformance (${SUITES.join(", ")}): ${counts.passed} pass, ${counts.skipped} on the skip list (known to fail)`);
  });
});
