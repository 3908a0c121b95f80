/**
 * Scripted faults written as text, for a `VendorSimulator` that misbehaves on cue: the reference mock
 * vendors read them from env (`MOCK_SYNC_FAULTS` and the like), so that a vendor running as its own
 * process can be told what to do; tests can write them in code too.
 *
 * A plan is one or more scripts separated by `|`, dealt to jobs in turn as each job first arrives:
 * the first job gets the first script, the second job the second, and so on round. A script is
 * steps separated by `,`; a job's n-th arrival gets its script's n-th step, and everything past
 * the end behaves normally. `<step>x<n>` repeats a step n times. So `503x3|ok|503x9` makes every
 * third job fail three times before it gets through, and every third job fail for good.
 *
 * Answer steps (`MOCK_SYNC_FAULTS`, `MOCK_ASYNC_FAULTS`), for a call to the vendor:
 * - `ok`: the normal answer;
 * - a status from 400 to 599, e.g. `503`: that status with a JSON error body;
 * - `429:<seconds>`: 429 with `Retry-After: <seconds>` (plain `429` is `429:1`);
 * - `garbage`: 200 with an HTML page instead of JSON, as a misconfigured proxy answers;
 * - `slow:<ms>`: the normal answer, `ms` late (a vendor slower than the caller's timeout);
 * - `deep`: 200 with JSON nested {@link hostileDepth} levels deep (40 KB);
 * - `huge`: 200 with a JSON answer of {@link hugeBytes} bytes.
 *
 * Callback steps (`MOCK_ASYNC_CALLBACK_FAULTS`), for an async vendor's n-th callback of a job
 * (one per accepted call):
 * - `ok`: sent as usual;
 * - `drop`: never sent (the vendor forgot the job);
 * - `duplicate`: sent twice, one after the other;
 * - `hold`: kept back until the job's next callback has been sent, then sent: out of order;
 * - `late:<ms>`: sent `ms` later than usual;
 * - `deep`: its data nested {@link hostileDepth} levels deep.
 *
 * Outages (`MOCK_SYNC_OUTAGES`, `MOCK_ASYNC_OUTAGES`) are vendor-wide rather than per job: in each
 * window the vendor answers every call with a 5xx. `503:1000-7000,502:12000-13000` is 503 from 1 s
 * to 7 s after its first call, and 502 from 12 s to 13 s; `503/3000:1000-7000`
 * answers each 503 only after 3 s, as a struggling vendor does.
 *
 * @since 0.1.0
 */
import { VendorDefinition } from "@vendorflow/core"
import { Schema } from "effect"

/**
 * A scripted answer to one call.
 *
 * @category models
 */
export const AnswerFault = Schema.Union([
  Schema.TaggedStruct("Ok", {}),
  Schema.TaggedStruct("Status", { status: Schema.Int, retryAfterSeconds: Schema.optionalKey(Schema.Int) }),
  Schema.TaggedStruct("Garbage", {}),
  Schema.TaggedStruct("Slow", { millis: Schema.Int }),
  Schema.TaggedStruct("Deep", {}),
  Schema.TaggedStruct("Huge", {})
])

/**
 * How deep a `deep` answer or callback nests: far past any sane JSON, and past what a recursive
 * walk of it survives.
 *
 * @category constants
 */
export const hostileDepth = 20_000

/**
 * JSON nested {@link hostileDepth} levels deep: arrays around a number.
 *
 * @category constants
 */
export const deepJson = `${"[".repeat(hostileDepth)}1${"]".repeat(hostileDepth)}`

/**
 * The size of a `huge` answer: 6 MiB, past the 5 MiB a vendor's answer may have by default.
 *
 * @category constants
 */
export const hugeBytes = 6 * 1024 * 1024

/** @category models */
export type AnswerFault = typeof AnswerFault.Type

/**
 * A scripted fate for one callback.
 *
 * @category models
 */
export const CallbackFault = Schema.Union([
  Schema.Literals(["ok", "drop", "duplicate", "hold", "deep"]),
  Schema.TaggedStruct("Late", { millis: Schema.Int })
])

/** @category models */
export type CallbackFault = typeof CallbackFault.Type

/**
 * One step: what it does, and how it was written (recorded with the arrival or callback it hit).
 *
 * @category models
 */
export interface Step<A> {
  readonly fault: A
  readonly label: string
}

/**
 * Scripts dealt to jobs in turn, each a list of steps.
 *
 * @category models
 */
export interface Plan<A> {
  readonly scripts: ReadonlyArray<ReadonlyArray<Step<A>>>
}

const planSchema = <A>(fault: Schema.Codec<A>): Schema.Codec<Plan<A>> =>
  Schema.Struct({ scripts: Schema.Array(Schema.Array(Schema.Struct({ fault, label: Schema.String }))) })

/**
 * Reads one answer step, or undefined.
 *
 * @category parsing
 */
export const parseAnswerStep = (text: string): AnswerFault | undefined => {
  if (text === "ok") return { _tag: "Ok" }
  if (text === "garbage") return { _tag: "Garbage" }
  if (text === "deep") return { _tag: "Deep" }
  if (text === "huge") return { _tag: "Huge" }
  const slow = /^slow:(\d+)$/.exec(text)
  if (slow !== null) return { _tag: "Slow", millis: Number(slow[1]) }
  const limited = /^429(?::(\d+))?$/.exec(text)
  if (limited !== null) return { _tag: "Status", status: 429, retryAfterSeconds: Number(limited[1] ?? "1") }
  const status = /^([45]\d\d)$/.exec(text)
  return status === null ? undefined : { _tag: "Status", status: Number(status[1]) }
}

/**
 * Reads one callback step, or undefined.
 *
 * @category parsing
 */
export const parseCallbackStep = (text: string): CallbackFault | undefined => {
  if (text === "ok" || text === "drop" || text === "duplicate" || text === "hold" || text === "deep") return text
  const late = /^late:(\d+)$/.exec(text)
  return late === null ? undefined : { _tag: "Late", millis: Number(late[1]) }
}

/**
 * Reads a plan (see the module docs) with `step` reading each step; undefined when any part is
 * unreadable, an empty text is no plan.
 *
 * @category parsing
 */
export const parse = <A>(text: string, step: (text: string) => A | undefined): Plan<A> | undefined => {
  if (text.trim() === "") return { scripts: [] }
  const scripts: Array<Array<Step<A>>> = []
  for (const script of text.split("|")) {
    const steps: Array<Step<A>> = []
    for (const raw of script.split(",")) {
      const match = /^\s*(\S+?)(?:x(\d+))?\s*$/.exec(raw)
      const fault = match === null ? undefined : step(match[1] ?? "")
      if (match === null || fault === undefined) return undefined
      const times = Number(match[2] ?? "1")
      for (let i = 0; i < times; i++) steps.push({ fault, label: match[1] ?? "" })
    }
    scripts.push(steps)
  }
  return { scripts }
}

const format = <A>(plan: Plan<A>): string =>
  plan.scripts.map((script) => script.map((step) => step.label).join(",")).join("|")

const planCodec = <A>(
  fault: Schema.Codec<A>,
  step: (text: string) => A | undefined,
  expected: string
): Schema.Codec<Plan<A>, string> =>
  VendorDefinition.fromEnvString({
    type: planSchema(fault),
    parse: (text) => parse(text, step),
    format,
    expected
  })

/**
 * An answer plan from its env form, for `Config.schema`.
 *
 * @category parsing
 */
export const AnswerPlanFromString: Schema.Codec<Plan<AnswerFault>, string> = planCodec(
  AnswerFault,
  parseAnswerStep,
  `answer faults like "503x3|ok|429:2,slow:3000|garbage"`
)

/**
 * A callback plan from its env form, for `Config.schema`.
 *
 * @category parsing
 */
export const CallbackPlanFromString: Schema.Codec<Plan<CallbackFault>, string> = planCodec(
  CallbackFault,
  parseCallbackStep,
  `callback faults like "drop|duplicate|hold,ok|late:3000|deep"`
)

/**
 * A window, in ms after the vendor's first call, in which it answers every call `status`,
 * `delayMs` late.
 *
 * @category models
 */
export const Outage = Schema.Struct({ status: Schema.Int, delayMs: Schema.Int, fromMs: Schema.Int, toMs: Schema.Int })

/** @category models */
export type Outage = typeof Outage.Type

/**
 * Reads outages (`503:1000-7000,502/3000:12000-13000`), or undefined.
 *
 * @category parsing
 */
export const parseOutages = (text: string): ReadonlyArray<Outage> | undefined => {
  const outages: Array<Outage> = []
  for (const part of text.split(",")) {
    if (part.trim() === "") continue
    const match = /^\s*(5\d\d)(?:\/(\d+))?:(\d+)-(\d+)\s*$/.exec(part)
    if (match === null || Number(match[4]) <= Number(match[3])) return undefined
    outages.push({
      status: Number(match[1]),
      delayMs: Number(match[2] ?? "0"),
      fromMs: Number(match[3]),
      toMs: Number(match[4])
    })
  }
  return outages
}

/**
 * Outages from their env form, for `Config.schema`.
 *
 * @category parsing
 */
export const OutagesFromString: Schema.Codec<ReadonlyArray<Outage>, string> = VendorDefinition.fromEnvString({
  type: Schema.Array(Outage),
  parse: parseOutages,
  format: (outages) =>
    outages.map((o) => `${o.status}${o.delayMs > 0 ? `/${o.delayMs}` : ""}:${o.fromMs}-${o.toMs}`).join(","),
  expected: `outages like "503:1000-7000,502:12000-13000"`
})

/**
 * The outage in force `elapsed` ms after the first arrival, if any.
 *
 * @category outages
 */
export const outageAt = (outages: ReadonlyArray<Outage>, elapsed: number): Outage | undefined =>
  outages.find((outage) => elapsed >= outage.fromMs && elapsed < outage.toMs)

/**
 * Deals a plan's scripts to jobs and answers each job's next step.
 *
 * @category models
 */
export interface Dealer<A> {
  /** The step for `jobId`'s next arrival; undefined past the end of its script (or with no plan). */
  readonly next: (jobId: string) => Step<A> | undefined
}

/**
 * A {@link Dealer} for `plan`; with no plan (or an empty one) every step is undefined.
 *
 * @category constructors
 */
export const makeDealer = <A>(plan: Plan<A> | undefined): Dealer<A> => {
  const scripts = plan?.scripts ?? []
  const seen = new Map<string, { readonly script: ReadonlyArray<Step<A>>; count: number }>()
  return {
    next: (jobId) => {
      if (scripts.length === 0) return undefined
      let entry = seen.get(jobId)
      if (entry === undefined) {
        entry = { script: scripts[seen.size % scripts.length] ?? [], count: 0 }
        seen.set(jobId, entry)
      }
      return entry.script[entry.count++]
    }
  }
}
