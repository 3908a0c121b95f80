/**
 * The dashboard's shell: a skip link, the navigation, the key prompt when the API answers 401,
 * and the view the hash names.
 */
import { useEffect, useRef, useState } from "preact/hooks"
import { apiKey, getHealth, onUnauthorized, setApiKey } from "./api.ts"
import { usePoll, useRoute } from "./hooks.ts"
import { DeadLetters } from "./views/DeadLetters.tsx"
import { JobPage } from "./views/JobPage.tsx"
import { Jobs } from "./views/Jobs.tsx"
import { Overview } from "./views/Overview.tsx"

const views = [
  { view: "overview", href: "#/overview", label: "Overview" },
  { view: "jobs", href: "#/jobs", label: "Jobs" },
  { view: "dead-letters", href: "#/dead-letters", label: "Dead letters" }
] as const

const KeyPrompt = ({ onSaved }: { readonly onSaved: () => void }) => {
  const [key, setKey] = useState("")
  const input = useRef<HTMLInputElement>(null)
  useEffect(() => input.current?.focus(), [])
  return (
    <form
      class="card key-prompt"
      aria-labelledby="key-heading"
      onSubmit={(event) => {
        event.preventDefault()
        if (key.trim() === "") return
        setApiKey(key.trim())
        onSaved()
      }}
    >
      <h2 id="key-heading">An API key is needed</h2>
      <p>
        The server answered 401. Enter your API key; it is kept for this tab only (sessionStorage) and sent as{" "}
        <code>X-API-Key</code>. You see the jobs of this key.
      </p>
      <label>
        API key
        <input
          ref={input}
          name="api-key"
          type="password"
          autoComplete="off"
          required
          value={key}
          onInput={(e) => setKey(e.currentTarget.value)}
        />
      </label>
      <button type="submit">Use this key</button>
    </form>
  )
}

export const App = () => {
  const route = useRoute()
  const [needKey, setNeedKey] = useState(false)
  // Bumped when a key is saved or forgotten: every view remounts and asks again with it.
  const [session, setSession] = useState(0)
  useEffect(() => onUnauthorized(() => setNeedKey(true)), [])
  const health = usePoll(getHealth, [session])
  const vendors = health.data?.vendors ?? []
  const main = useRef<HTMLElement>(null)
  // A new view takes focus, so keyboard and screen-reader users start at its content.
  useEffect(() => main.current?.focus({ preventScroll: true }), [route.view, route.id])

  const current = route.view === "job" ? "jobs" : route.view
  return (
    <>
      <a class="skip" href="#main" onClick={(e) => (e.preventDefault(), main.current?.focus())}>
        Skip to content
      </a>
      <header class="top">
        <span class="brand">vendorflow</span>
        <nav aria-label="Views">
          <ul>
            {views.map((v) => (
              <li key={v.view}>
                <a href={v.href} aria-current={current === v.view ? "page" : undefined}>
                  {v.label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        {apiKey() !== null && (
          <button
            type="button"
            class="link"
            onClick={() => {
              setApiKey(null)
              setSession((n) => n + 1)
            }}
          >
            Forget API key
          </button>
        )}
      </header>
      <main id="main" ref={main} tabIndex={-1} key={session}>
        {needKey ? (
          <KeyPrompt
            onSaved={() => {
              setNeedKey(false)
              setSession((n) => n + 1)
            }}
          />
        ) : route.view === "job" && route.id !== undefined ? (
          <JobPage id={route.id} />
        ) : route.view === "jobs" ? (
          <Jobs params={route.params} vendors={vendors} />
        ) : route.view === "dead-letters" ? (
          <DeadLetters />
        ) : (
          <Overview />
        )}
      </main>
    </>
  )
}
