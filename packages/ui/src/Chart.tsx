/**
 * A small uPlot line chart that fills its container's width; redrawn in place when the data
 * changes (each poll). The canvas is hidden from screen readers: the figure's label says what the
 * chart shows and the last point's values.
 */
import { useEffect, useRef } from "preact/hooks"
import uPlot from "uplot"
// oxlint-disable-next-line import/no-unassigned-import -- a stylesheet, bundled by Vite
import "uplot/dist/uPlot.min.css"

const clock = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", hour12: false })

export interface Series {
  readonly label: string
  readonly color: string
  readonly values: ReadonlyArray<number | null>
}

export const Chart = (props: {
  readonly title: string
  /** Seconds since the epoch, one per point. */
  readonly x: ReadonlyArray<number>
  readonly series: ReadonlyArray<Series>
  readonly height?: number | undefined
}) => {
  const box = useRef<HTMLDivElement>(null)
  const plot = useRef<uPlot | null>(null)
  const data = (): uPlot.AlignedData => [
    [...props.x],
    ...props.series.map((series) => series.values.map((value) => value ?? null))
  ]
  const shape = props.series.map((series) => series.label).join("|")

  useEffect(() => {
    const element = box.current
    if (element === null) return
    const chart = new uPlot(
      {
        width: Math.max(200, element.clientWidth),
        height: props.height ?? 110,
        legend: { show: false },
        cursor: { show: true, drag: { x: false, y: false } },
        scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(1, max)] } },
        axes: [
          {
            stroke: "#555",
            grid: { stroke: "#eee" },
            ticks: { stroke: "#ddd" },
            values: (_u, ticks) => ticks.map((t) => clock.format(new Date(t * 1000)))
          },
          { stroke: "#555", grid: { stroke: "#eee" }, ticks: { stroke: "#ddd" }, size: 40 }
        ],
        series: [
          { label: "time" },
          // Points show a lone value (a p95 in one bucket between empty ones) that a line cannot; the
          // line spans buckets without calls, which have no latency.
          ...props.series.map((series) => ({
            label: series.label,
            stroke: series.color,
            width: 2,
            spanGaps: true,
            points: { show: true, size: 5, fill: series.color }
          }))
        ]
      },
      data(),
      element
    )
    plot.current = chart
    const resize = new ResizeObserver(() =>
      chart.setSize({ width: Math.max(200, element.clientWidth), height: chart.height })
    )
    resize.observe(element)
    return () => {
      resize.disconnect()
      chart.destroy()
      plot.current = null
    }
  }, [shape, props.height])

  useEffect(() => {
    plot.current?.setData(data())
  }, [props.x, props.series])

  const last = props.series
    .map((series) => `${series.label} ${series.values[series.values.length - 1] ?? "none"}`)
    .join(", ")
  return (
    <figure class="chart" aria-label={`${props.title}; latest: ${last}`}>
      <figcaption>{props.title}</figcaption>
      <div ref={box} aria-hidden="true" />
      <ul class="legend" aria-hidden="true">
        {props.series.map((series) => (
          <li key={series.label}>
            <span class="swatch" style={{ background: series.color }} /> {series.label}
          </li>
        ))}
      </ul>
    </figure>
  )
}
