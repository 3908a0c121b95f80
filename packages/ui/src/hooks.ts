/**
 * Small hooks: the hash route, and polling an API call with its last answer and error.
 */
import { useCallback, useEffect, useRef, useState } from "preact/hooks"
import { messageOf } from "./api.ts"

export interface Route {
  /** `overview`, `jobs`, `job` or `dead-letters`. */
  readonly view: string
  /** The job id on a job's page. */
  readonly id?: string | undefined
  readonly params: URLSearchParams
}

/** Reads `#/jobs?status=failed` or `#/jobs/<id>`. */
export const parseHash = (hash: string): Route => {
  const [path = "", query = ""] = hash.replace(/^#\/?/, "").split("?")
  const params = new URLSearchParams(query)
  const [first = "", second] = path.split("/")
  if (first === "jobs" && second !== undefined && second !== "") {
    return { view: "job", id: decodeURIComponent(second), params }
  }
  return { view: first === "" ? "overview" : first, params }
}

export const useRoute = (): Route => {
  const [route, setRoute] = useState(() => parseHash(location.hash))
  useEffect(() => {
    const update = () => setRoute(parseHash(location.hash))
    addEventListener("hashchange", update)
    return () => removeEventListener("hashchange", update)
  }, [])
  return route
}

export interface Polled<A> {
  readonly data: A | undefined
  readonly error: string | undefined
  readonly loading: boolean
  /** Asks again now. */
  readonly reload: () => void
}

/**
 * Calls `load` now, whenever `deps` change, and every `everyMillis` while `enabled` (never while
 * the tab is hidden); keeps the last answer while a new one is on its way.
 */
export const usePoll = <A>(
  load: () => Promise<A>,
  deps: ReadonlyArray<unknown>,
  options: { readonly everyMillis?: number | undefined; readonly enabled?: boolean | undefined } = {}
): Polled<A> => {
  const [data, setData] = useState<A | undefined>(undefined)
  const [error, setError] = useState<string | undefined>(undefined)
  const [loading, setLoading] = useState(true)
  const [tick, setTick] = useState(0)
  const generation = useRef(0)
  const reload = useCallback(() => setTick((n) => n + 1), [])

  useEffect(() => {
    const mine = ++generation.current
    setLoading(true)
    load().then(
      (answer) => {
        if (mine !== generation.current) return
        setData(answer)
        setError(undefined)
        setLoading(false)
      },
      (failure: unknown) => {
        if (mine !== generation.current) return
        setError(messageOf(failure))
        setLoading(false)
      }
    )
  }, [...deps, tick])

  // A new query starts from nothing rather than showing the old query's answer.
  useEffect(() => setData(undefined), deps)

  useEffect(() => {
    if (options.everyMillis === undefined || options.enabled === false) return
    const timer = setInterval(() => {
      if (document.visibilityState === "visible") reload()
    }, options.everyMillis)
    return () => clearInterval(timer)
  }, [options.everyMillis, options.enabled, reload])

  return { data, error, loading, reload }
}
