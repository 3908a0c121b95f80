/**
 * Headless Chromium for the browser tests: Debian's `chromium` (`CHROMIUM_PATH`, default
 * `/usr/bin/chromium`) driven by `playwright-core`, in a fresh temporary profile removed on close.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { type BrowserContext, chromium, type Page } from "playwright-core"

export const executablePath = process.env["CHROMIUM_PATH"] ?? "/usr/bin/chromium"

/** Why the browser tests cannot run here, or undefined when they can. */
export const unavailable = (): string | undefined =>
  existsSync(executablePath)
    ? undefined
    : `no Chromium at ${executablePath} (.ci/run installs Debian's; set CHROMIUM_PATH to use another)`

export interface Browser {
  readonly context: BrowserContext
  /** A new tab (its own sessionStorage) with a viewport `width` wide, and its console errors. */
  readonly open: (width: number) => Promise<{ readonly page: Page; readonly errors: Array<string> }>
  readonly close: () => Promise<void>
}

export const launch = async (): Promise<Browser> => {
  const profile = mkdtempSync(join(tmpdir(), "vendorflow-chromium-"))
  const context = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync"
    ],
    viewport: { width: 1280, height: 900 },
    timezoneId: "UTC",
    locale: "en-GB"
  })
  return {
    context,
    open: async (width) => {
      const page = await context.newPage()
      await page.setViewportSize({ width, height: width < 600 ? 844 : 900 })
      const errors: Array<string> = []
      page.on("console", (message) => {
        if (message.type() === "error") errors.push(message.text())
      })
      page.on("pageerror", (error) => errors.push(String(error)))
      return { page, errors }
    },
    close: async () => {
      await context.close()
      rmSync(profile, { recursive: true, force: true })
    }
  }
}

/**
 * Polls `check` until it stops throwing, failing with its last error after `timeoutMillis`. The
 * way to wait on a condition outside the page (the API's view of a job).
 */
export const eventually = async <A>(check: () => Promise<A>, timeoutMillis = 10_000): Promise<A> => {
  const deadline = Date.now() + timeoutMillis
  for (;;) {
    try {
      return await check()
    } catch (error) {
      if (Date.now() > deadline) throw error
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }
}
