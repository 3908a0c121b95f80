/**
 * The dashboard in a real browser against a real stack: the all-in-one process (`npm start`: API,
 * engine, both mock vendors as HTTP servers) on free ports, its built `/ui/` driven by headless
 * Chromium. Jobs are created through the API and watched on the page; the sync vendor rejects every
 * third job once (a 400, so the job fails at once) so there are dead letters to retry.
 *
 * Screenshots of each view at 1280 and 390 px go to `UI_SCREENSHOTS_DIR` (default a temp dir);
 * `UI_SCREENSHOTS_DIR=docs/images` refreshes the README's.
 */
import type { Api } from "@vendorflow/core"
import { Stack } from "@vendorflow/dev-stack"
import { Effect, Exit, Scope } from "effect"
import { mkdirSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import type { Page } from "playwright-core"
import { afterAll, assert, beforeAll, describe, it } from "vitest"
import { type Browser, eventually, launch, unavailable } from "./support/Browser.ts"

const skip = unavailable()
if (skip !== undefined) console.warn(`browser tests skipped: ${skip}`)

const shots = resolve(process.env["UI_SCREENSHOTS_DIR"] ?? join(tmpdir(), "vendorflow-ui-screenshots"))

// The all-in-one process with `env`, for the life of a block of tests.
const allInOne = (env: Record<string, string>) => {
  const scope = Effect.runSync(Scope.make())
  return {
    start: () => Effect.runPromise(Scope.provide(Stack.standalone({}, { env }), scope)).then((started) => started.url),
    stop: () => Effect.runPromise(Scope.close(scope, Exit.void))
  }
}

const stack = allInOne({
  MOCK_SYNC_LATENCY_MS: "40-160",
  MOCK_SYNC_USER_INFO_PROBABILITY: "1",
  MOCK_SYNC_FAULTS: "ok|ok|400",
  // The worker's limit for the sync vendor, so the overview shows its use.
  VENDOR_SYNC_RATE_LIMIT: "20/1s",
  MOCK_ASYNC_DELAY_MS: "200-600",
  MOCK_ASYNC_USER_INFO_PROBABILITY: "1"
})

let base = ""
let browser: Browser

const api = async <A>(path: string, init?: RequestInit): Promise<A> => {
  const response = await fetch(`${base}${path}`, init)
  assert.isTrue(response.ok, `${init?.method ?? "GET"} ${path}: ${response.status}`)
  return (await response.json()) as A
}

const submit = (vendor: string, n: number) =>
  api<Api.Submitted>("/jobs", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ vendor, company: `  Company ${n}  `, email: `owner${n}@example.com` })
  }).then((submitted) => submitted.request_id)

const finished = (id: string) =>
  eventually(async () => {
    const job = await api<Api.JobView>(`/jobs/${id}`)
    assert.include(["complete", "failed"], job.status, `job ${id}`)
    return job
  }, 15_000)

/** Waits until the element's text is `expected`, failing with what it showed. */
const textIs = (page: Page, selector: string, expected: string) =>
  page.waitForFunction(
    ([s, want]) => document.querySelector(s ?? "")?.textContent?.trim() === want,
    [selector, expected] as const,
    { timeout: 15_000, polling: 100 }
  )

const screenshot = async (page: Page, name: string) => {
  const width = page.viewportSize()?.width ?? 0
  // Readable at 390 px: nothing but the scrolling tables is wider than the screen.
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)
  assert.isAtMost(overflow, 0, `${name} at ${width} px scrolls sideways`)
  await page.screenshot({ path: join(shots, `${name}-${width}.png`), fullPage: true })
}

const openAt = async (width: number, hash: string) => {
  const tab = await browser.open(width)
  await tab.page.goto(`${base}/ui/${hash}`)
  return tab
}

describe.skipIf(skip !== undefined)("the dashboard in Chromium", () => {
  const ids = { sync: [] as Array<string>, async: [] as Array<string> }

  beforeAll(async () => {
    mkdirSync(shots, { recursive: true })
    const [url, launched] = await Promise.all([stack.start(), launch()])
    base = url
    browser = launched
  }, 60_000)

  afterAll(async () => {
    await browser?.close()
    await stack.stop()
  })

  it("overview: jobs created through the API show up completing, per vendor", async () => {
    const { page, errors } = await openAt(1280, "#/overview")
    await page.getByRole("heading", { name: "sync", exact: true }).waitFor()
    const card = (vendor: string, cell: string) => `[data-vendor="${vendor}"] [data-testid="${cell}"]`
    assert.strictEqual((await page.textContent(card("sync", "completed-5")))?.trim(), "0")
    assert.strictEqual((await page.textContent(card("sync", "circuit")))?.trim(), "circuit Closed")

    // Six sync jobs: the vendor rejects every third one (two of them); three async ones, all fine.
    ids.sync.push(...(await Promise.all([1, 2, 3, 4, 5, 6].map((n) => submit("sync", n)))))
    ids.async.push(...(await Promise.all([7, 8, 9].map((n) => submit("async", n)))))

    await textIs(page, card("sync", "completed-5"), "4")
    await textIs(page, card("sync", "failed-5"), "2")
    await textIs(page, card("async", "completed-5"), "3")
    await textIs(page, card("sync", "backlog"), "0")
    assert.match((await page.textContent(card("sync", "call-errors-5"))) ?? "", /Rejected 2/)
    assert.match((await page.textContent(card("sync", "success-rate-5"))) ?? "", /66\.7%/)
    assert.notMatch((await page.textContent(card("sync", "call-latency-p95-5"))) ?? "", /–/)
    // The charts drew: one canvas per chart, two charts per vendor.
    assert.strictEqual(await page.locator(".chart canvas").count(), 4)
    await Promise.all([...ids.sync, ...ids.async].map(finished))
    await screenshot(page, "overview")
    const { page: narrow } = await openAt(390, "#/overview")
    await textIs(narrow, card("async", "completed-5"), "3")
    await screenshot(narrow, "overview")
    assert.deepStrictEqual(errors, [])
  })

  it("jobs: filter by status, vendor and time, page through, open a job by its id", async () => {
    const { page, errors } = await openAt(1280, "#/jobs?status=complete&vendor=async")
    const rows = page.locator("table.jobs tbody tr")
    await page.getByTestId("jobs-summary").getByText("3 complete jobs of async on page 1").waitFor()
    assert.deepStrictEqual((await rows.locator("td:nth-child(2)").allTextContents()).sort(), [
      "async",
      "async",
      "async"
    ])

    // With the keyboard-usable labelled controls, as a person would.
    await page.getByLabel("Vendor", { exact: true }).selectOption("sync")
    await page.getByTestId("jobs-summary").getByText("4 complete jobs of sync on page 1").waitFor()
    await page.getByLabel("Status", { exact: true }).selectOption("failed")
    await page.getByTestId("jobs-summary").getByText("2 failed jobs of sync on page 1").waitFor()
    assert.deepStrictEqual(await rows.locator("td:nth-child(7)").allTextContents(), ["Rejected", "Rejected"])
    await page.getByLabel("Changed", { exact: true }).selectOption("5m")
    await page.getByTestId("jobs-summary").getByText("2 failed jobs of sync on page 1").waitFor()
    await page.getByLabel("Vendor", { exact: true }).selectOption("")
    await page.getByLabel("Status", { exact: true }).selectOption("complete")
    await page.getByTestId("jobs-summary").getByText("7 complete jobs on page 1").waitFor()
    await screenshot(page, "jobs")

    // Pages of three: 7 complete jobs are pages of 3, 3 and 1.
    await page.goto(`${base}/ui/#/jobs?status=complete&limit=3`)
    await page.getByTestId("jobs-summary").getByText("3 complete jobs on page 1").waitFor()
    const firstPage = await rows.first().getAttribute("data-job-id")
    await page.getByRole("button", { name: "Next page" }).click()
    await page.getByTestId("jobs-summary").getByText("3 complete jobs on page 2").waitFor()
    await page.getByRole("button", { name: "Next page" }).click()
    await page.getByTestId("jobs-summary").getByText("1 complete job on page 3").waitFor()
    assert.isTrue(await page.getByRole("button", { name: "Next page" }).isDisabled())
    await page.getByRole("button", { name: "Previous page" }).click()
    await page.getByRole("button", { name: "Previous page" }).click()
    await page.getByTestId("jobs-summary").getByText("3 complete jobs on page 1").waitFor()
    // The first page may still show the rows it had while it loads again: waits for its first row
    // with a deadline and, if it never comes, names every row shown.
    await eventually(async () => {
      const shown = await rows.evaluateAll((all) => all.map((row) => row.getAttribute("data-job-id")))
      assert.strictEqual(shown[0], firstPage, `page 1 shows ${shown.join(", ")}`)
    }, 5_000)

    // Open a job by typing its id and pressing Enter.
    const id = ids.async[0] ?? ""
    await page.getByLabel("Job id", { exact: true }).fill(id)
    await page.getByLabel("Job id", { exact: true }).press("Enter")
    await textIs(page, '[data-testid="job-status"]', "complete")
    assert.strictEqual(await page.locator(".job-id").textContent(), id)
    const result = (await page.locator("pre.json").textContent()) ?? ""
    assert.include(result, id, "the vendor's answer for this job")
    assert.include(result, "user_info", "with the person the vendor sent")
    assert.notMatch(result, /[\w.+-]+@[\w-]+\.[\w.]+/, "no raw e-mail address on the page")
    assert.include(await page.locator(".timeline").textContent(), "Completed with a cleaned result")
    await screenshot(page, "job")
    const { page: narrow } = await openAt(390, `#/jobs/${id}`)
    await textIs(narrow, '[data-testid="job-status"]', "complete")
    await screenshot(narrow, "job")
    const { page: narrowList } = await openAt(390, "#/jobs?status=complete")
    await narrowList.getByTestId("jobs-summary").getByText("7 complete jobs on page 1").waitFor()
    await screenshot(narrowList, "jobs")
    assert.deepStrictEqual(errors, [])
  })

  it("dead letters: failed jobs grouped by vendor and reason, retried one and by selection", async () => {
    const { page, errors } = await openAt(1280, "#/dead-letters")
    const group = page.locator('[data-group="sync/Rejected"]')
    await group.getByRole("heading", { name: "sync · Rejected (2)" }).waitFor()
    const failed = await group.locator("li").evaluateAll((items) => items.map((li) => li.getAttribute("data-job-id")))
    assert.strictEqual(failed.length, 2)
    await screenshot(page, "dead-letters")
    const { page: narrow } = await openAt(390, "#/dead-letters")
    await narrow.locator('[data-group="sync/Rejected"] li').nth(1).waitFor()
    await screenshot(narrow, "dead-letters")

    const [first = "", second = ""] = failed as Array<string>
    // One by its own button: the vendor answers its second arrival, so it completes.
    await page.getByRole("button", { name: `Retry job ${first}` }).click()
    await page.getByTestId("retry-status").getByText("Sent 1 job round again.").waitFor()
    assert.strictEqual((await finished(first)).status, "complete")
    // The other by selecting it and retrying the selection.
    await group.getByRole("heading", { name: "sync · Rejected (1)" }).waitFor()
    await page.getByLabel(`Select job ${second}`).check()
    await page.getByRole("button", { name: "Retry selected (1)" }).click()
    await page.getByText("No failed jobs.").waitFor({ timeout: 15_000 })
    const retried = await finished(second)
    assert.strictEqual(retried.status, "complete")
    assert.strictEqual(retried.attempts, 1, "a retry resets the attempts")
    assert.deepStrictEqual(errors, [])
  })

  it("asks for an API key when the API answers 401, keeps it for the tab and sends it", async () => {
    const { page } = await browser.open(1280)
    const seen: Array<string | undefined> = []
    // Stands in for API keys on the server: every API call without the key is refused.
    await page.route(/\/(stats|health|jobs)/, (route) => {
      const key = route.request().headers()["x-api-key"]
      seen.push(key)
      return key === "k-dashboard"
        ? route.continue()
        : route.fulfill({
            status: 401,
            contentType: "application/problem+json",
            body: JSON.stringify({
              type: "about:blank",
              status: 401,
              title: "Unauthorized",
              detail: "API key required"
            })
          })
    })
    await page.goto(`${base}/ui/#/overview`)
    const input = page.getByRole("textbox", { name: "API key" })
    await input.waitFor()
    assert.isTrue(await input.evaluate((element) => element === document.activeElement), "the key input has focus")
    await input.fill("k-dashboard")
    await input.press("Enter")
    await page.getByRole("heading", { name: "sync", exact: true }).waitFor()
    assert.strictEqual(await page.evaluate(() => sessionStorage.getItem("vendorflow.apiKey")), "k-dashboard")
    assert.include(seen, "k-dashboard")
    await page.getByRole("button", { name: "Forget API key" }).click()
    await page.getByRole("textbox", { name: "API key" }).waitFor()
    assert.isNull(await page.evaluate(() => sessionStorage.getItem("vendorflow.apiKey")))
  })
})

describe.skipIf(skip !== undefined)("the dashboard with API keys on", () => {
  // The server's own key checks (`API_KEYS`): two keys, each seeing only its own jobs.
  const keyed = allInOne({
    API_KEYS: "ops:k-ops,other:k-other",
    MOCK_SYNC_LATENCY_MS: "20-60",
    MOCK_ASYNC_DELAY_MS: "100-300"
  })
  let url = ""
  let keyedBrowser: Browser

  beforeAll(async () => {
    ;[url, keyedBrowser] = await Promise.all([keyed.start(), launch()])
  }, 60_000)

  afterAll(async () => {
    await keyedBrowser?.close()
    await keyed.stop()
  })

  const submitAs = async (key: string) => {
    const response = await fetch(`${url}/jobs`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-api-key": key },
      body: JSON.stringify({ vendor: "sync", key })
    })
    assert.strictEqual(response.status, 200)
    const { request_id } = (await response.json()) as Api.Submitted
    await eventually(async () => {
      const job = (await (
        await fetch(`${url}/jobs/${request_id}`, { headers: { "x-api-key": key } })
      ).json()) as Api.JobView
      assert.strictEqual(job.status, "complete")
    }, 15_000)
    return request_id
  }

  it("asks for a key, then shows only that key's jobs", async () => {
    const [mine, theirs] = await Promise.all([submitAs("k-ops"), submitAs("k-other")])
    const { page, errors } = await keyedBrowser.open(1280)
    await page.goto(`${url}/ui/#/jobs?status=complete`)
    const input = page.getByRole("textbox", { name: "API key" })
    await input.fill("k-ops")
    await input.press("Enter")
    await page.getByTestId("jobs-summary").getByText("1 complete job on page 1").waitFor()
    assert.deepStrictEqual(
      await page
        .locator("table.jobs tbody tr")
        .evaluateAll((rows) => rows.map((row) => row.getAttribute("data-job-id"))),
      [mine]
    )
    // Another key's job is not found for this key.
    await page.goto(`${url}/ui/#/jobs/${theirs}`)
    await page.getByRole("alert").waitFor()
    // The 401s before the key was given, and the 404 just now, are the browser's own console lines.
    assert.isTrue(
      errors.every((line) => /status of (401|404)/.test(line)),
      errors.join("\n")
    )
  })
})
