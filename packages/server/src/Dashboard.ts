/**
 * The operator's dashboard at `GET /ui/`: the static files that `@vendorflow/ui` builds with Vite
 * into this package's `assets/ui` (`npm run build:ui`; `npm start` and the browser tests build it
 * when it is missing or older than its sources). The page talks to the API like any client, so
 * nothing here knows about jobs.
 *
 * Offers {@link layer}; without a build, `/ui/` answers a 503 problem that says how to build it.
 *
 * @since 0.1.0
 */
import { Effect, Layer } from "effect"
import { HttpRouter, HttpStaticServer, ProblemDetails } from "effect/http"
import { existsSync } from "node:fs"
import { fileURLToPath } from "node:url"

/**
 * Where the built dashboard may be: `assets/ui` beside `src/` (running from source) or beside
 * `dist/src/` (running the compiled package).
 *
 * @category constants
 */
export const candidateDirs: ReadonlyArray<string> = [
  fileURLToPath(new URL("../assets/ui/", import.meta.url)),
  fileURLToPath(new URL("../../assets/ui/", import.meta.url))
]

/**
 * The directory holding the built dashboard's `index.html`, if there is one.
 *
 * @category constructors
 */
export const findAssets = (): string | undefined => candidateDirs.find((dir) => existsSync(`${dir}index.html`))

const notBuilt = ProblemDetails.toResponse({
  type: ProblemDetails.blankType,
  status: 503,
  title: "Service unavailable",
  detail: "The dashboard is not built; run `npm run build:ui` (npm start builds it when missing)."
})

/**
 * The built files under `/ui/` (`GET /ui` redirects there).
 *
 * @category layers
 */
export const layer = Layer.unwrap(
  Effect.sync(() => {
    const root = findAssets()
    // A route ending in `/*` also answers its bare prefix: `GET /ui` redirects to `/ui/`.
    if (root === undefined) return HttpRouter.add("GET", "/ui/*", notBuilt)
    // `no-cache`: a browser revalidates (cheaply, by ETag) so a rebuilt dashboard shows at once. The
    // static server's `PlatformError` is in its type only: building it does no I/O.
    return HttpStaticServer.layer({ root, prefix: "/ui", cacheControl: "no-cache" }).pipe(Layer.orDie)
  })
)
