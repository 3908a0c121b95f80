/**
 * Dead letters: the failed jobs (`GET /jobs?status=failed`, up to {@link maxJobs} of the most
 * recent), grouped by vendor and error reason; retry one, a group, or any selection
 * (`POST /jobs/{id}/retry` each).
 */
import { useState } from "preact/hooks"
import { type JobList, type JobView, listJobs, messageOf, retryJob } from "../api.ts"
import { ago, dateTime, shortId } from "../format.ts"
import { usePoll } from "../hooks.ts"
import { Problem } from "./Problem.tsx"

export const maxJobs = 1000

const loadFailed = async (): Promise<{ readonly jobs: ReadonlyArray<JobView>; readonly truncated: boolean }> => {
  const jobs: Array<JobView> = []
  let cursor: string | undefined
  do {
    const page: JobList = await listJobs({ status: "failed", limit: 200, cursor })
    jobs.push(...page.jobs)
    cursor = page.next_cursor
  } while (cursor !== undefined && jobs.length < maxJobs)
  return { jobs, truncated: cursor !== undefined }
}

interface Group {
  readonly key: string
  readonly vendor: string
  readonly reason: string
  readonly jobs: ReadonlyArray<JobView>
}

const groupsOf = (jobs: ReadonlyArray<JobView>): ReadonlyArray<Group> => {
  const groups = new Map<string, Group>()
  for (const job of jobs) {
    const reason = job.error?.reason ?? "unknown"
    const key = `${job.vendor}\u0000${reason}`
    const group = groups.get(key) ?? { key, vendor: job.vendor, reason, jobs: [] }
    groups.set(key, { ...group, jobs: [...group.jobs, job] })
  }
  return [...groups.values()].sort((a, b) => a.vendor.localeCompare(b.vendor) || b.jobs.length - a.jobs.length)
}

export const DeadLetters = () => {
  const failed = usePoll(loadFailed, [], { everyMillis: 5000 })
  const [selected, setSelected] = useState<ReadonlySet<string>>(new Set<string>())
  const [busy, setBusy] = useState(false)
  const [message, setMessage] = useState<string | undefined>(undefined)
  const jobs = failed.data?.jobs ?? []
  const present = new Set<string>(jobs.map((job) => job.request_id))
  const chosen = [...selected].filter((id) => present.has(id))

  const toggle = (ids: ReadonlyArray<string>, on: boolean) => {
    const next = new Set(selected)
    for (const id of ids) {
      if (on) next.add(id)
      else next.delete(id)
    }
    setSelected(next)
  }

  const retry = async (ids: ReadonlyArray<string>) => {
    setBusy(true)
    setMessage(`Retrying ${ids.length} job${ids.length === 1 ? "" : "s"}…`)
    const outcomes = await Promise.allSettled(ids.map((id) => retryJob(id)))
    const refused = outcomes.flatMap((outcome, i) =>
      outcome.status === "rejected" ? [`${shortId(ids[i] ?? "")}: ${messageOf(outcome.reason)}`] : []
    )
    const sent = ids.length - refused.length
    setMessage(
      `Sent ${sent} job${sent === 1 ? "" : "s"} round again.` +
        (refused.length === 0 ? "" : ` Refused: ${refused.join("; ")}`)
    )
    toggle(ids, false)
    setBusy(false)
    failed.reload()
  }

  return (
    <>
      <div class="view-head">
        <h1>Dead letters</h1>
        <p class="muted">Failed jobs by vendor and reason; a retry sends a job round again under the same id.</p>
      </div>
      <Problem error={failed.error} />
      <div class="toolbar">
        <button type="button" disabled={busy || chosen.length === 0} onClick={() => void retry(chosen)}>
          Retry selected ({chosen.length})
        </button>
        <span role="status" aria-live="polite" data-testid="retry-status">
          {message}
        </span>
      </div>
      {failed.data !== undefined && jobs.length === 0 && <p class="note">No failed jobs.</p>}
      {failed.data?.truncated === true && <p class="note">Showing the {maxJobs} most recent failed jobs.</p>}
      {groupsOf(jobs).map((group) => {
        const ids = group.jobs.map((job) => job.request_id)
        const all = ids.every((id) => selected.has(id))
        const headingId = `group-${group.vendor}-${group.reason}`.replace(/[^A-Za-z0-9_-]/g, "-")
        return (
          <section
            class="card group"
            key={group.key}
            aria-labelledby={headingId}
            data-group={`${group.vendor}/${group.reason}`}
          >
            <header class="card-head">
              <h2 id={headingId}>
                {group.vendor} · {group.reason} <span class="count">({group.jobs.length})</span>
              </h2>
              <label class="inline">
                <input type="checkbox" checked={all} onChange={(e) => toggle(ids, e.currentTarget.checked)} /> Select
                all {group.jobs.length}
              </label>
              <button type="button" disabled={busy} onClick={() => void retry(ids)}>
                Retry group
              </button>
            </header>
            <ul class="letters">
              {group.jobs.map((job) => (
                <li key={job.request_id} data-job-id={job.request_id}>
                  <label class="inline">
                    <input
                      type="checkbox"
                      checked={selected.has(job.request_id)}
                      onChange={(e) => toggle([job.request_id], e.currentTarget.checked)}
                    />
                    <span class="sr-only">Select job {job.request_id}</span>
                  </label>
                  <a href={`#/jobs/${job.request_id}`} title={job.request_id}>
                    <code>{shortId(job.request_id)}</code>
                  </a>
                  <span class="message">{job.error?.message ?? ""}</span>
                  <time dateTime={job.updated_at} title={dateTime(job.updated_at)}>
                    {ago(job.updated_at)}
                  </time>
                  <button
                    type="button"
                    disabled={busy}
                    aria-label={`Retry job ${job.request_id}`}
                    onClick={() => void retry([job.request_id])}
                  >
                    Retry
                  </button>
                </li>
              ))}
            </ul>
          </section>
        )
      })}
    </>
  )
}
