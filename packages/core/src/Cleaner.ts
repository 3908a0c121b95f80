/**
 * The Cleaner: trims strings and removes PII from vendor answers before they are stored or logged.
 *
 * `clean` is a pure function over JSON values. It trims every string, replaces the whole value under a
 * key that names PII (e-mail, phone, SSN, password, card, address, date of birth, IP) with
 * {@link redacted}, and replaces PII found inside free text (e-mail addresses, phone numbers, SSNs,
 * Luhn-valid card numbers, IPv4 and IPv6 addresses) while leaving look-alikes such as versions, dates,
 * UUIDs, prices and order numbers alone. Vendors tune it with {@link CleanerRules}.
 *
 * Layers: `Cleaner.layer`.
 *
 * @since 0.1.0
 */
import { Context, Effect, Layer, type Schema } from "effect"

/**
 * What replaces redacted PII.
 *
 * @category constants
 */
export const redacted = "[REDACTED]"

/**
 * Per-vendor cleaning rules, merged over the defaults. A rules object is compiled once and cached, so
 * treat it as immutable.
 *
 * @category models
 */
export interface CleanerRules {
  /**
   * More keys whose values are always redacted, matched like the built-in ones: case and separators
   * are ignored, and the name matches as whole words inside a longer key (`"accountHolder"` also
   * catches `primary_account_holder` and `AccountHolders`, not `accountholdership`).
   */
  readonly piiKeys?: ReadonlyArray<string> | undefined
  /**
   * Keys whose values are left exactly as they are (neither trimmed nor redacted); the whole key must
   * match, ignoring case and separators. Wins over every PII rule.
   */
  readonly keepKeys?: ReadonlyArray<string> | undefined
  /** Whether PII inside free text is found by pattern; default true. */
  readonly redactPatterns?: boolean | undefined
}

// Matched against every run of consecutive words in a key, joined, so `E-Mail`, `credit_card_number`
// and `date_of_birth` hit while words that merely contain a token (`shipping`, `phoneme`,
// `addressable`, `cardinality`) do not.
const defaultTokens: ReadonlyArray<string> = [
  "email",
  "phone",
  "phonenumber",
  "phoneno",
  "telephone",
  "tel",
  "mobilenumber",
  "cellphone",
  "cellnumber",
  "ssn",
  "socialsecurity",
  "socialsecuritynumber",
  "password",
  "passwd",
  "pwd",
  "passphrase",
  "creditcard",
  "debitcard",
  "paymentcard",
  "cardnumber",
  "cardno",
  "cardnum",
  "carddetails",
  "cardinfo",
  "carddata",
  "ccnumber",
  "ccnum",
  "ccno",
  "pan",
  "primaryaccountnumber",
  "cvv",
  "cvv2",
  "cvc",
  "cvc2",
  "address",
  "dob",
  "dateofbirth",
  "birthdate",
  "birthday",
  "ip",
  "ipaddr",
  "ipv4",
  "ipv6"
]

// `card` alone names a card, but as one word among others it is usually metadata (`card_count`,
// `card_type`), so it only counts as the whole key.
const wholeKeyTokens: ReadonlySet<string> = new Set(["card"])

// Compounds written as one lower-case word (`useremail`, `billingaddress`) have no word boundary to
// split on; these are long and specific enough to look for anywhere in the normalised key.
const gluedTokens: ReadonlyArray<string> = [
  "email",
  "password",
  "passwd",
  "phonenumber",
  "telephone",
  "mobilephone",
  "homephone",
  "workphone",
  "cellphone",
  "creditcard",
  "cardnumber",
  "socialsecurity",
  "dateofbirth",
  "birthdate",
  "ipaddress",
  "ipv4",
  "ipv6"
]

// Splits `IPAddress`, `dateOfBirth`, `SSN_last_4`, `credit-card number` into words. Anything that is
// not a letter or digit is a separator; digits form their own words so `ipv4` is `ipv` + `4`, which
// the run matching joins back.
const wordPattern = /\p{Lu}+(?!\p{Ll})|\p{Lu}?[\p{Ll}\p{Lo}\p{Lm}\p{Lt}]+|\p{N}+/gu

const words = (key: string): ReadonlyArray<string> =>
  Array.from(key.match(wordPattern) ?? [], (word) => word.toLowerCase())

const normalise = (key: string): string => words(key).join("")

// Long enough for every built-in token and any sensible vendor one; bounds the work on odd long keys.
const maxRunWords = 8

const hasToken = (tokens: ReadonlySet<string>, joined: string): boolean =>
  tokens.has(joined) ||
  (joined.endsWith("s") && tokens.has(joined.slice(0, -1))) ||
  (joined.endsWith("es") && tokens.has(joined.slice(0, -2)))

type KeyKind = "keep" | "pii" | "plain"

// A match must not continue a word, a number, a dotted version or a dashed code on either side, so
// `v1.2.3.4`, `1.2.3.4-beta` and `ORD-123-45-6789` stay whole; a full stop ending a sentence is fine.
const before = "(?<![\\w.-])"
const after = "(?![\\w-]|\\.\\d)"

const octet = "(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)"
const ipv4 = `(?:${octet}\\.){3}${octet}`
const hextet = "[0-9A-Fa-f]{1,4}"
// Every form but the full eight groups contains `::`, so times (`10:30:00`) and MAC addresses never
// match. The forms with an embedded IPv4 come first so they win over a shorter prefix.
const ipv6 = [
  `(?:${hextet}:){6}${ipv4}`,
  `::(?:[Ff]{4}(?::0{1,4})?:)?${ipv4}`,
  `(?:${hextet}:){1,4}:${ipv4}`,
  `(?:${hextet}:){7}${hextet}`,
  `(?:${hextet}:){1,7}:`,
  `(?:${hextet}:){1,6}:${hextet}`,
  `(?:${hextet}:){1,5}(?::${hextet}){1,2}`,
  `(?:${hextet}:){1,4}(?::${hextet}){1,3}`,
  `(?:${hextet}:){1,3}(?::${hextet}){1,4}`,
  `(?:${hextet}:){1,2}(?::${hextet}){1,5}`,
  `${hextet}:(?::${hextet}){1,6}`,
  `:(?:(?::${hextet}){1,7}|:)`
].join("|")

// The local part is capped at its RFC limit of 64 so a long run without `@` costs linear time.
const emailPattern = /[\w.!#$%&*+=?^{|}~-]{1,64}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}/g
const ipv6Pattern = new RegExp(`(?<![\\w:])(?:${ipv6})(?![\\w:]|\\.\\d)`, "g")
const ipv4Pattern = new RegExp(`${before}${ipv4}${after}`, "g")
// One run of 13-19 digits, or groups of 3-6 digits after a first group of 4 (4-4-4-4, 4-6-5, ...).
const cardPattern = new RegExp(`${before}(?:\\d{13,19}|\\d{4}(?:[ -]\\d{3,6}){2,4})${after}`, "g")
const ssnPattern = new RegExp(`${before}(\\d{3})-(\\d{2})-(\\d{4})${after}`, "g")
// `+` and a country code, then groups; the digit count is checked afterwards (E.164 allows 8-15).
const internationalPhonePattern = new RegExp(
  `(?<![\\w+])\\+\\d{1,3}(?:[ .-]?(?:\\(\\d{1,4}\\)|\\d{1,5})){1,6}${after}`,
  "g"
)
// North American 3-3-4, optionally with a leading 1 and the area code in parentheses.
const localPhonePattern = new RegExp(
  `${before}(?:1[ .-])?(?:\\(\\d{3}\\)[ .-]?|\\d{3}[ .-])\\d{3}[ .-]\\d{4}${after}`,
  "g"
)

const hasDigit = /\d/

const luhn = (digits: string): boolean => {
  let sum = 0
  for (let i = 0; i < digits.length; i++) {
    const digit = digits.charCodeAt(digits.length - 1 - i) - 48
    const weighted = i % 2 === 1 ? digit * 2 : digit
    sum += weighted > 9 ? weighted - 9 : weighted
  }
  return sum % 10 === 0
}

// Every major network (Visa 4, Mastercard 2/5, Amex and Diners 3, Discover and UnionPay 6) starts with
// 2-6; requiring it halves the chance that an id or a millisecond timestamp (starts with 1) that happens
// to pass Luhn is taken for a card.
const isCardNumber = (match: string): boolean => {
  const digits = match.replace(/[ -]/g, "")
  return digits.length >= 13 && digits.length <= 19 && /^[2-6]/.test(digits) && luhn(digits)
}

// Numbers the SSA never issues (area 000, 666 or 9xx, group 00, serial 0000) are not anyone's SSN.
const isSsn = (area: string, group: string, serial: string): boolean =>
  area !== "000" && area !== "666" && !area.startsWith("9") && group !== "00" && serial !== "0000"

const countDigits = (text: string): number => text.replace(/\D/g, "").length

const redactPatterns = (text: string): string => {
  // Every pattern needs a digit or an `@`; most strings have neither and skip all the scans.
  const hasAt = text.includes("@")
  if (!hasAt && !hasDigit.test(text)) return text
  let out = hasAt ? text.replace(emailPattern, redacted) : text
  if (out.includes(":")) {
    // `dead::beef` is a valid address but far more often a `Type::member` in prose.
    out = out.replace(ipv6Pattern, (match) => (hasDigit.test(match) ? redacted : match))
  }
  return out
    .replace(cardPattern, (match) => (isCardNumber(match) ? redacted : match))
    .replace(ssnPattern, (match, area: string, group: string, serial: string) =>
      isSsn(area, group, serial) ? redacted : match
    )
    .replace(internationalPhonePattern, (match) => {
      const digits = countDigits(match)
      return digits >= 8 && digits <= 15 ? redacted : match
    })
    .replace(localPhonePattern, redacted)
    .replace(ipv4Pattern, redacted)
}

interface Compiled {
  readonly tokens: ReadonlySet<string>
  readonly keep: ReadonlySet<string>
  readonly patterns: boolean
  readonly kinds: Map<string, KeyKind>
}

// Vendors answer with the same keys again and again, so each key is classified once; the bound keeps
// a vendor that uses ids as keys from growing the cache without end.
const maxCachedKeys = 10_000

const compile = (rules: CleanerRules | undefined): Compiled => ({
  tokens: new Set([...defaultTokens, ...(rules?.piiKeys ?? []).map(normalise)].filter((token) => token !== "")),
  keep: new Set((rules?.keepKeys ?? []).map(normalise).filter((key) => key !== "")),
  patterns: rules?.redactPatterns ?? true,
  kinds: new Map()
})

const defaults = compile(undefined)
const compiledRules = new WeakMap<CleanerRules, Compiled>()

const compiledFor = (rules: CleanerRules | undefined): Compiled => {
  if (rules === undefined) return defaults
  const cached = compiledRules.get(rules)
  if (cached !== undefined) return cached
  const fresh = compile(rules)
  compiledRules.set(rules, fresh)
  return fresh
}

const classify = (compiled: Compiled, key: string): KeyKind => {
  const keyWords = words(key)
  const normalised = keyWords.join("")
  if (compiled.keep.has(normalised)) return "keep"
  if (hasToken(wholeKeyTokens, normalised)) return "pii"
  // `homeaddress`, `ipaddresses`: an address of any kind, written as one word.
  if (normalised.endsWith("address") || normalised.endsWith("addresses")) return "pii"
  if (gluedTokens.some((token) => normalised.includes(token))) return "pii"
  for (let start = 0; start < keyWords.length; start++) {
    let joined = ""
    for (const word of keyWords.slice(start, start + maxRunWords)) {
      joined += word
      if (hasToken(compiled.tokens, joined)) return "pii"
    }
  }
  return "plain"
}

const kindOf = (compiled: Compiled, key: string): KeyKind => {
  const cached = compiled.kinds.get(key)
  if (cached !== undefined) return cached
  const kind = classify(compiled, key)
  if (compiled.kinds.size >= maxCachedKeys) compiled.kinds.clear()
  compiled.kinds.set(key, kind)
  return kind
}

const isArray = (value: unknown): value is ReadonlyArray<unknown> => Array.isArray(value)

// Only JSON-shaped objects are walked; a Date or a class instance is passed through as it is rather
// than flattened into `{}`.
const isPlainObject = (value: unknown): value is Readonly<Record<string, unknown>> => {
  if (typeof value !== "object" || value === null) return false
  const proto: unknown = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}

const cleanString = (compiled: Compiled, text: string): string => {
  const trimmed = text.trim()
  return compiled.patterns ? redactPatterns(trimmed) : trimmed
}

const isContainer = (value: unknown): value is object => isArray(value) || isPlainObject(value)

// An array or object being rebuilt: its items (and keys, for an object), and the results so far.
interface Frame {
  readonly source: object
  /** Kept values are copied as they are, neither trimmed nor redacted. */
  readonly keeping: boolean
  readonly keys: ReadonlyArray<string> | undefined
  readonly items: ReadonlyArray<unknown>
  readonly results: Array<unknown>
}

// Walks the value with a stack of its own rather than by recursion, so that any depth is cleaned
// (a hostile vendor's answer nests as deep as it likes). The result never aliases the input; an
// object that contains itself cannot be JSON and fails with an error that says so.
const cleanValue = (compiled: Compiled, value: unknown): unknown => {
  if (!isContainer(value)) return typeof value === "string" ? cleanString(compiled, value) : value
  const open = new Set<object>()
  const frameOf = (source: object, keeping: boolean): Frame => {
    if (open.has(source)) throw new Error("the Cleaner was given a value that contains itself, which is not JSON")
    open.add(source)
    return isArray(source)
      ? { source, keeping, keys: undefined, items: source, results: [] }
      : { source, keeping, keys: Object.keys(source), items: Object.values(source), results: [] }
  }
  const stack = [frameOf(value, false)]
  let cleaned: unknown
  while (stack.length > 0) {
    const frame = stack[stack.length - 1]!
    const at = frame.results.length
    if (at < frame.items.length) {
      const item = frame.items[at]
      let keeping = frame.keeping
      if (!keeping && frame.keys !== undefined) {
        const kind = kindOf(compiled, frame.keys[at]!)
        // A missing value reveals nothing, and keeping it null keeps "not given" distinguishable.
        if (kind === "pii") {
          frame.results.push(item === null || item === undefined ? item : redacted)
          continue
        }
        keeping = kind === "keep"
      }
      if (isContainer(item)) stack.push(frameOf(item, keeping))
      else frame.results.push(!keeping && typeof item === "string" ? cleanString(compiled, item) : item)
      continue
    }
    stack.pop()
    open.delete(frame.source)
    // `Object.fromEntries` defines properties, so a `__proto__` key from `JSON.parse` stays a plain
    // key instead of replacing the prototype of the result.
    const { keys, results } = frame
    const built = keys === undefined ? results : Object.fromEntries(keys.map((key, i) => [key, results[i]]))
    const parent = stack[stack.length - 1]
    if (parent === undefined) cleaned = built
    else parent.results.push(built)
  }
  return cleaned
}

/**
 * Whether a value under `key` is redacted whole, under the default rules merged with `rules`.
 *
 * @category cleaning
 */
export const isPiiKey = (key: string, rules?: CleanerRules): boolean => kindOf(compiledFor(rules), key) === "pii"

/**
 * Cleans a JSON value into a new one: trims every string, redacts values under PII keys and PII
 * inside text. Never mutates its input; object keys are kept as they are. Any depth is cleaned; a
 * value that contains itself (not JSON) throws.
 *
 * @category cleaning
 */
export function clean(value: Schema.Json, rules?: CleanerRules): Schema.Json
export function clean(value: unknown, rules?: CleanerRules): unknown
export function clean(value: unknown, rules?: CleanerRules): unknown {
  return cleanValue(compiledFor(rules), value)
}

/**
 * The Cleaner service.
 *
 * @category services
 */
export class Cleaner extends Context.Service<
  Cleaner,
  {
    readonly clean: (value: Schema.Json, rules?: CleanerRules) => Effect.Effect<Schema.Json>
  }
>()("@vendorflow/core/Cleaner") {}

/**
 * The Cleaner service over {@link clean}.
 *
 * @category layers
 */
export const layer: Layer.Layer<Cleaner> = Layer.succeed(
  Cleaner,
  Cleaner.of({ clean: (value, rules) => Effect.sync(() => clean(value, rules)) })
)
