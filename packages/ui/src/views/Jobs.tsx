/**
 * Jobs: the list by status (the API lists one status at a time, most recently changed first),
 * filtered by vendor, time range and id, a page at a time. The time range applies to when a job
 * last changed; since the list is in that order, no later page can match once a page ends before
 * the range, and the next-page button goes.
 */
import { useState } from "preact/hooks"
import { type JobStatus, type JobView, listJobs, statuses } from "../api.ts"
import { ago, dateTime, shortId } from "../format.ts"
import { usePoll } from "../hooks.ts"
import { Problem } from "./Problem.tsx"

export const pageSize = 20

const ranges = [
  { value: "", label: "Any time", millis: undefined },
  { value: "5m", label: "Last 5 minutes", millis: 5 * 60_000 },
  { value: "1h", label: "Last hour", millis: 60 * 60_000 },
  { value: "24h", label: "Last 24 hours", millis: 24 * 60 * 60_000 }
] as const

const go = (params: URLSearchParams) => {
  location.hash = `#/jobs?${params.toString()}`
}

export const StatusBadge = ({ status }: { readonly status: string }) => (
  <span class={`status status-${status}`}>{status}</span>
)

export const JobRow = ({ job }: { readonly job: JobView }) => (
  <tr data-job-id={job.request_id}>
    <td>
      <a href={`#/jobs/${job.request_id}`} title={job.request_id}>
        <code>{shortId(job.request_id)}</code>
      </a>
    </td>
    <td>{job.vendor}</td>
    <td>
      <StatusBadge status={job.status} />
    </td>
    <td class="num">{job.attempts}</td>
    <td class="wide">{dateTime(job.created_at)}</td>
    <td>
      <time dateTime={job.updated_at} title={dateTime(job.updated_at)}>
        {ago(job.updated_at)}
      </time>
    </td>
    <td class="wide">{job.error === undefined ? "" : job.error.reason}</td>
  </tr>
)

export const JobsTable = ({ jobs, caption }: { readonly jobs: ReadonlyArray<JobView>; readonly caption: string }) => (
  <div class="table-wrap">
    <table class="jobs">
      <caption class="sr-only">{caption}</caption>
      <thead>
        <tr>
          <th scope="col">Job</th>
          <th scope="col">Vendor</th>
          <th scope="col">Status</th>
          <th scope="col" class="num">
            Attempts
          </th>
          <th scope="col" class="wide">
            Created
          </th>
          <th scope="col">Changed</th>
          <th scope="col" class="wide">
            Error
          </th>
        </tr>
      </thead>
      <tbody>
        {jobs.map((job) => (
          <JobRow key={job.request_id} job={job} />
        ))}
      </tbody>
    </table>
  </div>
)

/** A labelled select that sets the hash parameter `name`. */
const Filter = (props: {
  readonly name: string
  readonly label: string
  readonly value: string
  readonly options: ReadonlyArray<{ readonly value: string; readonly label: string }>
  readonly onChange: (name: string, value: string) => void
}) => (
  <div class="field">
    <label for={`filter-${props.name}`}>{props.label}</label>
    <select
      id={`filter-${props.name}`}
      name={props.name}
      value={props.value}
      onChange={(e) => props.onChange(props.name, e.currentTarget.value)}
    >
      {props.options.map((option) => (
        <option key={option.value} value={option.value}>
          {option.label}
        </option>
      ))}
    </select>
  </div>
)

export const Jobs = ({
  params,
  vendors
}: {
  readonly params: URLSearchParams
  readonly vendors: ReadonlyArray<string>
}) => {
  const status = (statuses as ReadonlyArray<string>).includes(params.get("status") ?? "")
    ? (params.get("status") as JobStatus)
    : "complete"
  const vendor = params.get("vendor") ?? ""
  const range = ranges.find((r) => r.value === (params.get("range") ?? "")) ?? ranges[0]
  // `limit` in the hash (1 to 500) overrides the page size, e.g. for a long list on a big screen.
  const asked = Number(params.get("limit") ?? pageSize)
  const limit = Number.isInteger(asked) && asked >= 1 && asked <= 500 ? asked : pageSize
  // Cursors of the pages before this one, to go back.
  const [cursors, setCursors] = useState<ReadonlyArray<string | undefined>>([undefined])
  const cursor = cursors[cursors.length - 1]
  const [live, setLive] = useState(true)
  const [id, setId] = useState("")

  const page = usePoll(() => listJobs({ status, vendor, limit, cursor }), [status, vendor, limit, cursor], {
    everyMillis: 2000,
    enabled: live && cursor === undefined
  })
  const since = range.millis === undefined ? undefined : Date.now() - range.millis
  const jobs = (page.data?.jobs ?? []).filter((job) => since === undefined || Date.parse(job.updated_at) >= since)
  const last = page.data?.jobs[page.data.jobs.length - 1]
  const more =
    page.data?.next_cursor !== undefined &&
    (since === undefined || (last !== undefined && Date.parse(last.updated_at) >= since))

  const set = (name: string, value: string) => {
    const next = new URLSearchParams(params)
    if (value === "") next.delete(name)
    else next.set(name, value)
    setCursors([undefined])
    go(next)
  }

  return (
    <>
      <div class="view-head">
        <h1>Jobs</h1>
      </div>
      <form
        class="filters"
        aria-label="Filter jobs"
        onSubmit={(event) => {
          event.preventDefault()
          const wanted = id.trim()
          if (wanted !== "") location.hash = `#/jobs/${encodeURIComponent(wanted)}`
        }}
      >
        <Filter
          name="status"
          label="Status"
          value={status}
          options={statuses.map((s) => ({ value: s, label: s }))}
          onChange={set}
        />
        <Filter
          name="vendor"
          label="Vendor"
          value={vendor}
          options={[{ value: "", label: "Any vendor" }, ...vendors.map((v) => ({ value: v, label: v }))]}
          onChange={set}
        />
        <Filter name="range" label="Changed" value={range.value} options={ranges} onChange={set} />
        <div class="field grow">
          <label for="filter-id">Job id</label>
          <input
            id="filter-id"
            name="id"
            type="search"
            placeholder="a job's request_id"
            autoComplete="off"
            spellcheck={false}
            value={id}
            onInput={(e) => setId(e.currentTarget.value)}
          />
        </div>
        <button type="submit">Open job</button>
        <label class="inline">
          <input type="checkbox" checked={live} onChange={(e) => setLive(e.currentTarget.checked)} /> Refresh every 2 s
        </label>
      </form>
      <Problem error={page.error} />
      <p class="muted" aria-live="polite" data-testid="jobs-summary">
        {page.data === undefined
          ? "Loading…"
          : `${jobs.length} ${status} job${jobs.length === 1 ? "" : "s"}${vendor === "" ? "" : ` of ${vendor}`} on page ${cursors.length}`}
      </p>
      {jobs.length > 0 && <JobsTable jobs={jobs} caption={`${status} jobs`} />}
      <nav class="pager" aria-label="Pages">
        <button type="button" disabled={cursors.length === 1} onClick={() => setCursors(cursors.slice(0, -1))}>
          Previous page
        </button>
        <button
          type="button"
          disabled={!more}
          onClick={() => page.data?.next_cursor !== undefined && setCursors([...cursors, page.data.next_cursor])}
        >
          Next page
        </button>
      </nav>
    </>
  )
}
