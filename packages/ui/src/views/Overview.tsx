/**
 * Overview: one card per vendor with its circuit, backlog, rate limit (configured or learned) and
 * its use, calls in flight, 429s, the 5- and 60-minute figures and two live charts, from
 * `GET /stats` polled every 2 seconds.
 */
import { getStats, type VendorStats, type WindowStats } from "../api.ts"
import { Chart } from "../Chart.tsx"
import { millis, percent, perMinute, time } from "../format.ts"
import { usePoll } from "../hooks.ts"
import { Problem } from "./Problem.tsx"

const reasons = (counts: Readonly<Record<string, number>>) =>
  Object.entries(counts)
    .map(([reason, n]) => `${reason} ${n}`)
    .join(", ") || "none"

const rows: ReadonlyArray<readonly [string, (w: WindowStats) => string]> = [
  ["Throughput", (w) => perMinute(w.throughput_per_minute)],
  ["Completed", (w) => String(w.completed)],
  ["Failed", (w) => String(w.failed)],
  ["Success rate", (w) => percent(w.success_rate)],
  ["Failure rate", (w) => percent(w.failure_rate)],
  ["Vendor calls", (w) => String(w.calls)],
  ["Call errors", (w) => reasons(w.call_errors)],
  ["Call latency p50", (w) => millis(w.call_latency_ms?.p50)],
  ["Call latency p95", (w) => millis(w.call_latency_ms?.p95)],
  ["End to end p50", (w) => millis(w.end_to_end_ms?.p50)],
  ["End to end p95", (w) => millis(w.end_to_end_ms?.p95)]
]

const VendorCard = ({ stats }: { readonly stats: VendorStats }) => {
  const x = stats.series.map((point) => point.at / 1000)
  const use = stats.rate_limit
  const headingId = `vendor-${stats.vendor}`
  return (
    <section class="card vendor" aria-labelledby={headingId} data-vendor={stats.vendor}>
      <header class="card-head">
        <h2 id={headingId}>{stats.vendor}</h2>
        <span class="tag">{stats.mode}</span>
        <span class={`circuit circuit-${stats.circuit.toLowerCase()}`} data-testid="circuit">
          circuit {stats.circuit}
        </span>
      </header>
      <dl class="facts">
        <div>
          <dt>Backlog</dt>
          <dd data-testid="backlog">{stats.backlog ?? "unknown"}</dd>
        </div>
        <div>
          <dt>Rate limit</dt>
          <dd>
            {use === undefined ? (
              "none"
            ) : (
              <>
                <meter
                  min={0}
                  max={1}
                  low={0.7}
                  high={0.9}
                  optimum={0}
                  value={Math.min(1, use.use)}
                  aria-label={`${stats.vendor} rate-limit use`}
                />{" "}
                {use.used_per_second.toFixed(2)} of {use.limit_per_second.toFixed(2)}/s ({percent(use.use)})
                {use.learned === true && (
                  <span data-testid="learned">
                    {" "}
                    learned{use.source === "advertised" ? " from headers" : use.source === "probed" ? " from 429s" : ""}
                  </span>
                )}
                {use.paused_ms !== undefined && (
                  <span data-testid="paused"> paused {millis(use.paused_ms)} after a 429</span>
                )}
              </>
            )}
          </dd>
        </div>
        {stats.in_flight !== undefined && (
          <div>
            <dt>In flight</dt>
            <dd data-testid="in-flight">
              {stats.in_flight.calls} of {stats.in_flight.max}
            </dd>
          </div>
        )}
        <div>
          <dt>429s (5 min)</dt>
          <dd data-testid="rate-limited">{stats.windows[0]?.call_errors["RateLimited"] ?? 0}</dd>
        </div>
      </dl>
      <div class="table-wrap">
        <table class="windows">
          <caption class="sr-only">{stats.vendor}: the last 5 and 60 minutes</caption>
          <thead>
            <tr>
              <th scope="col" />
              {stats.windows.map((w) => (
                <th scope="col" key={w.minutes}>
                  {w.minutes} min
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {rows.map(([label, cell]) => (
              <tr key={label}>
                <th scope="row">{label}</th>
                {stats.windows.map((w) => (
                  <td key={w.minutes} data-testid={`${label.toLowerCase().replace(/[^a-z0-9]+/g, "-")}-${w.minutes}`}>
                    {cell(w)}
                  </td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <div class="charts">
        <Chart
          title={`${stats.vendor}: jobs finished per 10 s`}
          x={x}
          series={[
            { label: "completed", color: "#1a7f37", values: stats.series.map((p) => p.completed) },
            { label: "failed", color: "#cf222e", values: stats.series.map((p) => p.failed) }
          ]}
        />
        <Chart
          title={`${stats.vendor}: vendor call p95 (ms)`}
          x={x}
          series={[{ label: "p95 ms", color: "#0969da", values: stats.series.map((p) => p.call_p95_ms ?? null) }]}
        />
      </div>
    </section>
  )
}

export const Overview = () => {
  const stats = usePoll(getStats, [], { everyMillis: 2000 })
  const report = stats.data
  return (
    <>
      <div class="view-head">
        <h1>Overview</h1>
        <p class="muted" aria-live="polite">
          {report === undefined ? "Loading…" : `Updated ${time(report.generated_at)}, every 2 s`}
        </p>
      </div>
      <Problem error={stats.error} />
      {report !== undefined && !report.collecting && (
        <p class="note">
          This server runs no worker, so it has no call or job figures (see docs/dashboard.md); backlog and circuits
          come from the shared backends.
        </p>
      )}
      <div class="vendors">
        {report?.vendors.map((vendor) => (
          <VendorCard key={vendor.vendor} stats={vendor} />
        ))}
      </div>
    </>
  )
}
