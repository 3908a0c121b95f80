/**
 * The API key schemes in the OpenAPI document, on the operations of the groups that declare
 * `Authorization`. Added by rewriting the document rather than with `HttpApiSecurity`: its schemes
 * would be tried one after another, and a rate-limited key in the first would be reported as a
 * missing key in the second.
 */

type Spec = Record<string, unknown>

const isObject = (value: unknown): value is Spec => typeof value === "object" && value !== null

/** `spec` with the `bearer` and `apiKey` schemes declared and required on every operation under `keyedPaths`. */
export const addSecuritySchemes =
  (keyedPaths: ReadonlyArray<string>) =>
  (spec: Spec): Spec => {
    const paths = isObject(spec["paths"]) ? spec["paths"] : {}
    for (const [path, operations] of Object.entries(paths)) {
      if (!keyedPaths.some((keyed) => path === keyed || path.startsWith(`${keyed}/`))) continue
      for (const operation of isObject(operations) ? Object.values(operations) : []) {
        if (isObject(operation)) operation["security"] = [{ bearer: [] }, { apiKey: [] }]
      }
    }
    const components = isObject(spec["components"]) ? spec["components"] : {}
    return {
      ...spec,
      components: {
        ...components,
        securitySchemes: {
          ...(isObject(components["securitySchemes"]) ? components["securitySchemes"] : {}),
          bearer: { type: "http", scheme: "bearer", description: "An API key from `API_KEYS`, when keys are on." },
          apiKey: { type: "apiKey", in: "header", name: "X-API-Key", description: "The same key, in its own header." }
        }
      }
    }
  }
