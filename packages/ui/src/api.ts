/**
 * The dashboard's API client: same-origin `fetch` with the API key (if one was given) in
 * `X-API-Key`, problem+json errors as {@link ApiError}, and a signal when the server asks for a key.
 * Types come from `@vendorflow/core`'s contract, so the page and the server agree on the wire.
 */
import type { Api, Job, Stats } from "@vendorflow/core"

export type JobView = Api.JobView
export type JobList = Api.JobList
export type JobStatus = Job.JobStatus
export type Health = Api.Health
export type StatsReport = Stats.Report
export type VendorStats = Stats.VendorStats
export type WindowStats = Stats.WindowStats

export const statuses: ReadonlyArray<JobStatus> = ["pending", "processing", "complete", "failed"]

const keyName = "vendorflow.apiKey"

/** The key kept for this tab (sessionStorage: gone when the tab closes). */
export const apiKey = (): string | null => sessionStorage.getItem(keyName)

export const setApiKey = (key: string | null): void => {
  if (key === null || key === "") sessionStorage.removeItem(keyName)
  else sessionStorage.setItem(keyName, key)
}

/** A non-2xx answer: its status and the problem's `detail` (or title). */
export class ApiError extends Error {
  readonly status: number
  constructor(status: number, message: string) {
    super(message)
    this.status = status
  }
}

const unauthorizedListeners = new Set<() => void>()

/** Calls `listener` whenever a call is answered 401; returns the unsubscribe. */
export const onUnauthorized = (listener: () => void): (() => void) => {
  unauthorizedListeners.add(listener)
  return () => unauthorizedListeners.delete(listener)
}

const problemOf = async (response: Response): Promise<string> => {
  const body: unknown = await response.json().catch(() => undefined)
  if (typeof body === "object" && body !== null) {
    const { detail, title } = body as { detail?: unknown; title?: unknown }
    if (typeof detail === "string") return detail
    if (typeof title === "string") return title
  }
  return `${response.status} ${response.statusText}`
}

/** Calls the API at `path` (e.g. `/stats`) and returns its JSON body. */
export const request = async <A>(path: string, init: RequestInit = {}): Promise<A> => {
  const headers = new Headers(init.headers)
  headers.set("accept", "application/json")
  const key = apiKey()
  if (key !== null) headers.set("x-api-key", key)
  const response = await fetch(path, { ...init, headers })
  if (response.status === 401) for (const listener of unauthorizedListeners) listener()
  if (!response.ok) throw new ApiError(response.status, await problemOf(response))
  return (await response.json()) as A
}

export const getStats = () => request<StatsReport>("/stats")

export const getHealth = () => request<Health>("/health")

export const getJob = (id: string) => request<JobView>(`/jobs/${encodeURIComponent(id)}`)

export const listJobs = (query: {
  readonly status: JobStatus
  readonly vendor?: string | undefined
  readonly limit: number
  readonly cursor?: string | undefined
}) => {
  const params = new URLSearchParams({ status: query.status, limit: String(query.limit) })
  if (query.vendor !== undefined && query.vendor !== "") params.set("vendor", query.vendor)
  if (query.cursor !== undefined) params.set("cursor", query.cursor)
  return request<JobList>(`/jobs?${params.toString()}`)
}

export const retryJob = (id: string) => request<JobView>(`/jobs/${encodeURIComponent(id)}/retry`, { method: "POST" })

/** A message for people from whatever a call threw. */
export const messageOf = (error: unknown): string => (error instanceof Error ? error.message : String(error))
