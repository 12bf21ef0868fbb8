// Test-only: checks every answer the flow receives against the spec the
// client was generated from, so the generated types are proven on the
// wire, not only by the compiler: the status must be documented for the
// operation, the content type must be the documented one, and the JSON body
// must validate against the documented schema (ajv; objects refuse
// properties the spec does not declare, and `null` only where the spec says
// `nullable`). An answer documented without a body must have none.

import { readFileSync } from "node:fs";

import { Ajv, type ValidateFunction } from "ajv";
import addFormatsModule from "ajv-formats";

// ajv-formats is CommonJS: its default export arrives as the module.
const addFormats = addFormatsModule as unknown as typeof addFormatsModule.default;

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

interface Operation {
  responses: Record<string, { content?: Record<string, { schema?: JsonObject }> }>;
}

function isObject(value: Json | undefined): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** A copy of `schema` where every object without `additionalProperties` refuses undeclared ones. */
function closed(schema: Json): Json {
  if (Array.isArray(schema)) return schema.map(closed);
  if (!isObject(schema)) return schema;
  const copy: JsonObject = {};
  for (const [key, value] of Object.entries(schema)) copy[key] = closed(value);
  if (isObject(copy.properties) && copy.additionalProperties === undefined) {
    copy.additionalProperties = false;
  }
  return copy;
}

export class Conformance {
  private readonly ajv = new Ajv({ allErrors: true, strictSchema: false });
  private readonly operations: { method: string; template: string; pattern: RegExp; operation: Operation }[] = [];
  private readonly validators = new Map<string, ValidateFunction>();
  /** Answers checked so far. */
  checked = 0;

  private readonly schemas: Record<string, Json>;

  constructor(specPath: string) {
    const spec = JSON.parse(readFileSync(specPath, "utf8")) as {
      paths: Record<string, Record<string, Operation>>;
      components: { schemas: Record<string, Json> };
    };
    this.schemas = spec.components.schemas;
    addFormats(this.ajv);
    this.ajv.addFormat("int64", { type: "number", validate: Number.isSafeInteger });
    this.ajv.addFormat("int32", { type: "number", validate: Number.isInteger });
    this.ajv.addSchema({ components: { schemas: closed(spec.components.schemas) } }, "spec");
    for (const [template, item] of Object.entries(spec.paths)) {
      const pattern = new RegExp(`^${template.replace(/\{[^}]+\}/g, "[^/]+")}$`);
      for (const [method, operation] of Object.entries(item)) {
        this.operations.push({ method: method.toUpperCase(), template, pattern, operation });
      }
    }
  }

  /**
   * The component schemas whose `example` (shown by Swagger UI, sent by
   * its "Try it out") does not validate against the schema itself.
   */
  invalidExamples(): string[] {
    const invalid: string[] = [];
    for (const [name, schema] of Object.entries(this.schemas)) {
      if (!isObject(schema) || schema.example === undefined) continue;
      const validate = this.ajv.getSchema(`spec#/components/schemas/${name}`);
      if (!validate || !validate(schema.example)) {
        invalid.push(`${name}: ${this.ajv.errorsText(validate?.errors)}`);
      }
    }
    return invalid;
  }

  /** Throws when `response` to `method url` is not what the spec documents. */
  async check(method: string, url: string, response: Response): Promise<void> {
    const path = new URL(url).pathname;
    const what = `${method} ${path} ${response.status}`;
    const found = this.operations.find((o) => o.method === method && o.pattern.test(path));
    if (!found) throw new Error(`${what}: no such operation in the spec`);
    const documented = found.operation.responses[String(response.status)];
    if (!documented) {
      throw new Error(
        `${what}: status not documented for ${method} ${found.template} (documented: ${Object.keys(found.operation.responses).join(", ")})`,
      );
    }
    const body = await response.clone().text();
    const content = Object.entries(documented.content ?? {});
    if (content.length === 0) {
      if (body !== "") throw new Error(`${what}: documented without a body, got ${body}`);
      this.checked += 1;
      return;
    }
    const contentType = response.headers.get("content-type");
    const media = content.find(([type]) => type.replace(/\s/g, "") === contentType?.replace(/\s/g, ""));
    if (!media) {
      throw new Error(`${what}: content-type ${contentType}, documented: ${content.map(([t]) => t).join(", ")}`);
    }
    const schema = media[1].schema;
    if (!media[0].includes("json") || schema === undefined) {
      throw new Error(`${what}: the flow only expects JSON answers with a schema, got ${media[0]}`);
    }
    const key = `${found.method} ${found.template} ${response.status}`;
    let validate = this.validators.get(key);
    if (!validate) {
      validate =
        typeof schema.$ref === "string" ? this.ajv.getSchema(`spec${schema.$ref}`) : this.ajv.compile(closed(schema) as JsonObject);
      if (!validate) throw new Error(`${what}: ${String(schema.$ref)} is not in the spec`);
      this.validators.set(key, validate);
    }
    const data = JSON.parse(body) as Json;
    if (!validate(data)) {
      throw new Error(`${what}: the body does not match the spec: ${this.ajv.errorsText(validate.errors)}\n${body}`);
    }
    this.checked += 1;
  }
}
