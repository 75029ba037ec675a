/**
 * Writes the OpenAPI 3.1 document of the /v1 JSON API from the compiled descriptors
 * (src/gen/descriptors) to src/gen/openapi/workflow.openapi.json. Part of `npm run generate`;
 * CI regenerates and fails on any difference, and test/http/openapi.test.ts does the same in npm test.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { OPENAPI_FILE } from "../src/http/http-server.js";
import { openApiText } from "../src/http/openapi.js";

mkdirSync(path.dirname(OPENAPI_FILE), { recursive: true });
writeFileSync(OPENAPI_FILE, openApiText());
process.stdout.write(`wrote ${path.relative(process.cwd(), OPENAPI_FILE)}\n`);
