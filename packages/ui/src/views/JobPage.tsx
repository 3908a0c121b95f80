/**
 * A job's page: its status, a timeline built from what the record holds (created, attempts, the
 * last error, a retry due, waiting for a callback, finished), its trace id (when the record has
 * one), the cleaned result (the store only ever holds cleaned data), its error, and a retry button
 * when it failed. Polled until finished.
 */
import { useState } from "preact/hooks"
import { getJob, type JobView, messageOf, retryJob } from "../api.ts"
import { dateTime } from "../format.ts"
import { usePoll } from "../hooks.ts"
import { StatusBadge } from "./Jobs.tsx"
import { Problem } from "./Problem.tsx"

interface Step {
  readonly at?: string | undefined
  readonly what: string
}

const timeline = (job: JobView): ReadonlyArray<Step> => {
  const steps: Array<Step> = [{ at: job.created_at, what: "Submitted" }]
  if (job.attempts > 0) {
    steps.push({ what: `${job.attempts} vendor attempt${job.attempts === 1 ? "" : "s"} started` })
  }
  if (job.error !== undefined && job.status !== "failed") {
    steps.push({ what: `Last attempt failed: ${job.error.reason} (${job.error.message})` })
  }
  if (job.next_retry_at !== undefined) steps.push({ at: job.next_retry_at, what: "Retry due" })
  if (job.awaiting_callback === true) steps.push({ what: "Accepted by the vendor; waiting for its callback" })
  if (job.status === "processing" && job.awaiting_callback !== true) steps.push({ what: "With the vendor now" })
  if (job.status === "pending" && job.attempts === 0) steps.push({ what: "Queued" })
  if (job.status === "complete") steps.push({ at: job.updated_at, what: "Completed with a cleaned result" })
  if (job.status === "failed") steps.push({ at: job.updated_at, what: `Failed: ${job.error?.reason ?? "unknown"}` })
  return steps
}

export const JobPage = ({ id }: { readonly id: string }) => {
  const job = usePoll(() => getJob(id), [id], { everyMillis: 1500 })
  const [retry, setRetry] = useState<{ readonly busy: boolean; readonly message?: string | undefined }>({ busy: false })
  const view = job.data
  const finished = view?.status === "complete" || view?.status === "failed"

  const sendRound = () => {
    setRetry({ busy: true })
    retryJob(id).then(
      () => {
        setRetry({ busy: false, message: "Sent round again." })
        job.reload()
      },
      (error: unknown) => setRetry({ busy: false, message: `Retry refused: ${messageOf(error)}` })
    )
  }

  return (
    <>
      <div class="view-head">
        <h1>
          Job <code class="job-id">{id}</code>
        </h1>
        <a href="#/jobs">Back to jobs</a>
      </div>
      <Problem error={job.error} />
      {view !== undefined && (
        <div class="job-grid">
          <section class="card" aria-labelledby="job-summary">
            <h2 id="job-summary">Summary</h2>
            <dl class="facts">
              <div>
                <dt>Status</dt>
                <dd data-testid="job-status">
                  <StatusBadge status={view.status} />
                  {!finished && <span class="muted"> (updating)</span>}
                </dd>
              </div>
              <div>
                <dt>Vendor</dt>
                <dd>{view.vendor}</dd>
              </div>
              <div>
                <dt>Attempts</dt>
                <dd data-testid="job-attempts">{view.attempts}</dd>
              </div>
              <div>
                <dt>Created</dt>
                <dd>{dateTime(view.created_at)}</dd>
              </div>
              <div>
                <dt>Last change</dt>
                <dd>{dateTime(view.updated_at)}</dd>
              </div>
              <div>
                <dt>Trace id</dt>
                {view.trace_id === undefined ? (
                  <dd class="muted">not recorded</dd>
                ) : (
                  <dd data-testid="job-trace">
                    <code>{view.trace_id}</code>
                  </dd>
                )}
              </div>
            </dl>
            {view.status === "failed" && (
              <p>
                <button type="button" onClick={sendRound} disabled={retry.busy}>
                  Retry this job
                </button>
              </p>
            )}
            {retry.message !== undefined && (
              <p role="status" class="note">
                {retry.message}
              </p>
            )}
          </section>
          <section class="card" aria-labelledby="job-timeline">
            <h2 id="job-timeline">Timeline</h2>
            <ol class="timeline">
              {timeline(view).map((step, i) => (
                <li key={i}>
                  {step.at !== undefined && <time dateTime={step.at}>{dateTime(step.at)}</time>}{" "}
                  <span>{step.what}</span>
                </li>
              ))}
            </ol>
          </section>
          {view.error !== undefined && (
            <section class="card" aria-labelledby="job-error">
              <h2 id="job-error">Error</h2>
              <p data-testid="job-error">
                <strong>{view.error.reason}</strong>: {view.error.message}
              </p>
            </section>
          )}
          <section class="card span" aria-labelledby="job-result">
            <h2 id="job-result">Result (cleaned)</h2>
            {view.result === undefined ? (
              <p class="muted">No result yet.</p>
            ) : (
              <pre class="json" tabIndex={0} aria-label="The job's cleaned result as JSON">
                {JSON.stringify(view.result, null, 2)}
              </pre>
            )}
          </section>
        </div>
      )}
    </>
  )
}
