/** How numbers, times and rates read on the page. */

export const percent = (rate: number | undefined): string =>
  rate === undefined ? "–" : `${(rate * 100).toFixed(rate === 1 || rate === 0 ? 0 : 1)}%`

export const millis = (value: number | undefined): string =>
  value === undefined ? "–" : value >= 10_000 ? `${(value / 1000).toFixed(1)} s` : `${Math.round(value)} ms`

export const perMinute = (value: number): string => `${value >= 10 ? value.toFixed(0) : value.toFixed(1)}/min`

export const dateTime = (iso: string | undefined): string =>
  iso === undefined ? "–" : new Date(iso).toLocaleString(undefined, { hour12: false })

export const time = (iso: string): string => new Date(iso).toLocaleTimeString(undefined, { hour12: false })

/** `3 s ago`, `5 min ago`; for recent changes at a glance. */
export const ago = (iso: string, now = Date.now()): string => {
  const seconds = Math.max(0, Math.round((now - Date.parse(iso)) / 1000))
  if (seconds < 60) return `${seconds} s ago`
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)} h ago`
  return `${Math.floor(seconds / 86_400)} d ago`
}

export const shortId = (id: string): string => id.slice(0, 8)
