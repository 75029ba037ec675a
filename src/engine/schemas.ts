/**
 * JSON Schemas of instance data (docs/data.md): a definition's variables_schema and each action's
 * payload_schema. Checked against the subset below when the definition is created, compiled once
 * with ajv (strict mode) per definition version, and turned into the CEL type of `vars` / `payload`.
 *
 * The supported subset of JSON Schema 2020-12, chosen so that every schema has one CEL type and no
 * keyword can cost more than linear time on a value:
 * - the top level is `{"type": "object", ...}`;
 * - every schema has one `type` (a string, not a list): object, array, string, number, integer, boolean;
 * - object: `properties`, `required` (names listed in properties), `additionalProperties` (true/false only);
 * - array: `items` (one schema), `minItems`, `maxItems`;
 * - string: `minLength`, `maxLength`;
 * - number / integer: `minimum`, `maximum`, `exclusiveMinimum`, `exclusiveMaximum` (numbers);
 * - any type: `enum`, `const`, `description`, `title`, `default`, `$comment`, and `$schema` on the top level
 *   (only the 2020-12 URI).
 * Everything else is refused with a diagnostic, notably `pattern` and `patternProperties` (ajv runs them
 * as JavaScript regular expressions, which can backtrack without bound), `$ref`, `oneOf`/`anyOf`/`allOf`,
 * `format` and `multipleOf`.
 *
 * CEL types: number and integer are both `double` (JSON numbers are doubles, so values go in unconverted;
 * an integer schema still refuses 1.5 when the result is validated), string is `string`, boolean is `bool`,
 * an array is `list<T>` of its items (`list<dyn>` without items), an object with properties is a message-like
 * type of its properties, an object without properties `map<string, dyn>`.
 */
import { Ajv2020, type ErrorObject, type ValidateFunction } from "ajv/dist/2020.js";
import type { FieldViolation } from "./errors.js";
import { MAX_SCHEMA_BYTES, MAX_SCHEMA_DEPTH } from "./limits.js";
import type { JsonValue, Payload } from "./types.js";

export type { ValidateFunction };

const SCHEMA_URI = "https://json-schema.org/draft/2020-12/schema";

const TYPES = ["object", "array", "string", "number", "integer", "boolean"] as const;
type SchemaType = (typeof TYPES)[number];

const COMMON = new Set(["type", "enum", "const", "description", "title", "default", "$comment"]);
const BY_TYPE: Record<SchemaType, Set<string>> = {
  object: new Set(["properties", "required", "additionalProperties"]),
  array: new Set(["items", "minItems", "maxItems"]),
  string: new Set(["minLength", "maxLength"]),
  number: new Set(["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"]),
  integer: new Set(["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"]),
  boolean: new Set(),
};
const NON_NEGATIVE_INTEGER = new Set(["minItems", "maxItems", "minLength", "maxLength"]);
const NUMBER_KEYWORDS = new Set(["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"]);

/** Why some keywords are refused, so the message says what to do instead. */
const REFUSED_HINT: Record<string, string> = {
  pattern: "regular expressions in schemas run as backtracking JavaScript RegExp; check the string in a guard instead, or use enum",
  patternProperties: "regular expressions in schemas run as backtracking JavaScript RegExp; list the properties instead",
  $ref: "references are not supported; write the sub-schema inline",
  $defs: "definitions are not supported; write the sub-schemas inline",
  oneOf: "combinators are not supported; use one type per property",
  anyOf: "combinators are not supported; use one type per property",
  allOf: "combinators are not supported; merge the schemas",
  format: "formats are not checked; use a string and check it in a guard",
};

/** A problem of a schema: `at` is the JSON path inside the schema (e.g. `.properties.amount.type`). */
export interface SchemaProblem {
  at: string;
  message: string;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * Whether a schema field is set: an empty Struct counts as unset (a transport may give `{}` for an
 * absent Struct, and `{}` as a schema would describe nothing).
 */
export function schemaGiven(schema: unknown): boolean {
  return schema !== undefined && schema !== null && !(isObject(schema) && Object.keys(schema).length === 0);
}

/** Every problem of `schema` against the supported subset (empty when it is usable). */
export function schemaProblems(schema: unknown): SchemaProblem[] {
  const problems: SchemaProblem[] = [];
  let size: number;
  try {
    size = Buffer.byteLength(JSON.stringify(schema) ?? "", "utf8");
  } catch {
    return [{ at: "", message: "is not a JSON value" }];
  }
  if (size > MAX_SCHEMA_BYTES) {
    return [{ at: "", message: `is ${size} bytes of JSON, at most ${MAX_SCHEMA_BYTES} allowed; simplify it` }];
  }
  if (!isObject(schema) || schema.type !== "object") {
    return [{ at: ".type", message: `must be an object schema: {"type": "object", "properties": {...}}` }];
  }
  walk(schema, "", 1, true, problems);
  return problems;
}

function walk(schema: unknown, at: string, depth: number, top: boolean, problems: SchemaProblem[]): void {
  const problem = (where: string, message: string): void => {
    problems.push({ at: `${at}${where}`, message });
  };
  if (!isObject(schema)) {
    problem("", `must be a schema object such as {"type": "string"}`);
    return;
  }
  if (depth > MAX_SCHEMA_DEPTH) {
    problem("", `nests more than ${MAX_SCHEMA_DEPTH} levels deep; flatten it`);
    return;
  }
  const type = schema.type;
  if (typeof type !== "string" || !(TYPES as readonly string[]).includes(type)) {
    problem(".type", `must be one of ${TYPES.join(", ")} (one type per schema; leave a property out of "required" to make it optional)`);
    return;
  }
  const allowed = BY_TYPE[type as SchemaType];
  for (const [key, value] of Object.entries(schema)) {
    if (key === "$schema" && top) {
      if (value !== SCHEMA_URI) problem(".$schema", `must be ${JSON.stringify(SCHEMA_URI)} or left out`);
      continue;
    }
    if (COMMON.has(key)) {
      if ((key === "description" || key === "title" || key === "$comment") && typeof value !== "string") problem(`.${key}`, "must be a string");
      if (key === "enum" && (!Array.isArray(value) || value.length === 0)) problem(".enum", "must be a non-empty list of values");
      continue;
    }
    if (!allowed.has(key)) {
      const hint = REFUSED_HINT[key];
      problem(
        `.${key}`,
        hint
          ? `keyword ${JSON.stringify(key)} is not supported: ${hint}`
          : `keyword ${JSON.stringify(key)} is not supported for type ${type}; allowed: ${[...allowed, ...COMMON].join(", ")} (docs/data.md)`,
      );
      continue;
    }
    if (NON_NEGATIVE_INTEGER.has(key) && !(Number.isSafeInteger(value) && (value as number) >= 0)) {
      problem(`.${key}`, "must be a non-negative whole number");
    } else if (NUMBER_KEYWORDS.has(key) && (typeof value !== "number" || !Number.isFinite(value))) {
      problem(`.${key}`, "must be a number");
    }
  }
  if (type === "object") {
    const properties = schema.properties;
    if (properties !== undefined) {
      if (!isObject(properties)) problem(".properties", "must be an object of property name -> schema");
      else for (const [name, sub] of Object.entries(properties)) walk(sub, `${at}.properties.${name}`, depth + 1, false, problems);
    }
    const required = schema.required;
    if (required !== undefined) {
      if (!Array.isArray(required) || required.some((r) => typeof r !== "string")) {
        problem(".required", "must be a list of property names");
      } else {
        for (const name of required as string[]) {
          if (!isObject(properties) || !(name in properties)) {
            problem(".required", `lists ${JSON.stringify(name)}, which is not in "properties": add it there, or remove it from "required"`);
          }
        }
      }
    }
    if (schema.additionalProperties !== undefined && typeof schema.additionalProperties !== "boolean") {
      problem(".additionalProperties", "must be true or false (schemas for additional properties are not supported)");
    }
  }
  if (type === "array" && schema.items !== undefined) walk(schema.items, `${at}.items`, depth + 1, false, problems);
}

/** The CEL type declaration (cel-js schema form) of a schema of the supported subset. */
export function celTypeOf(schema: Record<string, unknown>): string | Record<string, unknown> {
  switch (schema.type) {
    case "number":
    case "integer":
      return "double";
    case "string":
      return "string";
    case "boolean":
      return "bool";
    case "array": {
      if (!isObject(schema.items)) return "list<dyn>";
      const item = celTypeOf(schema.items);
      return `list<${typeof item === "string" ? item : "map<string, dyn>"}>`;
    }
    case "object": {
      if (!isObject(schema.properties) || Object.keys(schema.properties).length === 0) return "map<string, dyn>";
      const fields: Record<string, unknown> = {};
      for (const [name, sub] of Object.entries(schema.properties)) fields[name] = isObject(sub) ? celTypeOf(sub) : "dyn";
      return fields;
    }
    default:
      return "dyn";
  }
}

/** The JSON Schema type of a property of an object schema, or undefined when it has no such property. */
export function propertySchema(schema: Payload | undefined, name: string): Record<string, unknown> | undefined {
  const properties = schema?.properties;
  if (!isObject(properties) || !Object.hasOwn(properties, name)) return undefined;
  const sub = properties[name];
  return isObject(sub) ? sub : undefined;
}

/**
 * One ajv instance for every schema: strict (unknown keywords are errors, not ignored), every error at
 * once. Each compiled schema is removed from ajv's own cache right away (the validate function keeps
 * working), so definitions created over months do not pile up in it; `compiled` below is bounded.
 */
const ajv = new Ajv2020({ strict: true, allErrors: true, allowUnionTypes: false, validateFormats: false });

/** Why ajv's meta-schema refuses a schema that passed schemaProblems (undefined when it accepts it). Cheap: no code is generated. */
export function metaSchemaProblem(schema: Payload): string | undefined {
  if (ajv.validateSchema(schema)) return undefined;
  return ajv.errorsText(ajv.errors, { dataVar: "schema" });
}

/**
 * Compiled validators by the schema's JSON: compiling costs ajv about 2 to 3 ms (it generates code),
 * and definitions repeat schemas (every version, often every action). Bounded: cleared when full.
 */
const compiled = new Map<string, ValidateFunction>();
const MAX_COMPILED = 1000;

/** The validator of a schema that passed schemaProblems. Throws (with ajv's message) when ajv refuses it. */
export function compileSchema(schema: Payload): ValidateFunction {
  const key = JSON.stringify(schema);
  let validate = compiled.get(key);
  if (validate) return validate;
  try {
    validate = ajv.compile(schema);
  } finally {
    ajv.removeSchema(schema);
  }
  if (compiled.size >= MAX_COMPILED) compiled.clear();
  compiled.set(key, validate);
  return validate;
}

/** A validator compiled on first use, so creating a definition never pays for a schema no instance uses yet. */
export function lazyValidator(schema: Payload): () => ValidateFunction {
  let validate: ValidateFunction | undefined;
  return () => (validate ??= compileSchema(schema));
}

function pathOf(prefix: string, instancePath: string): string {
  let path = prefix;
  for (const raw of instancePath.split("/").slice(1)) {
    const segment = raw.replace(/~1/g, "/").replace(/~0/g, "~");
    path += /^\d+$/.test(segment) ? `[${segment}]` : `.${segment}`;
  }
  return path;
}

function violationOf(prefix: string, e: ErrorObject): FieldViolation {
  const path = pathOf(prefix, e.instancePath);
  const params = e.params as Record<string, unknown>;
  if (e.keyword === "required") return { field: `${path}.${String(params.missingProperty)}`, description: "is required" };
  if (e.keyword === "additionalProperties") {
    return { field: `${path}.${String(params.additionalProperty)}`, description: "is not a property of the schema" };
  }
  if (e.keyword === "enum") {
    return { field: path, description: `must be one of ${JSON.stringify(params.allowedValues)}` };
  }
  if (e.keyword === "const") return { field: path, description: `must be ${JSON.stringify(params.allowedValue)}` };
  return { field: path, description: e.message ?? `fails ${e.keyword}` };
}

/** Field violations of `value` against a compiled schema, each at `<prefix><path>` (e.g. `payload.amount`). */
export function schemaViolations(validate: ValidateFunction, value: JsonValue, prefix: string): FieldViolation[] {
  if (validate(value)) return [];
  return (validate.errors ?? []).map((e) => violationOf(prefix, e));
}

/**
 * Whether a usable schema accepts `{}` (what a state timer sends as payload); undefined when the schema
 * is not usable (its own diagnostics say why).
 */
export function acceptsEmptyObject(schema: unknown): boolean | undefined {
  if (!schemaGiven(schema) || schemaProblems(schema).length > 0 || metaSchemaProblem(schema as Payload) !== undefined) return undefined;
  return compileSchema(schema as Payload)({}) === true;
}
