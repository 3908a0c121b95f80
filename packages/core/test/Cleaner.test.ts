import { assert, describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { Cleaner, type CleanerRules, clean, isPiiKey, layer as CleanerLayer, redacted } from "../src/Cleaner.ts"

interface Case {
  readonly name: string
  readonly input: unknown
  readonly expected: unknown
}

const R = redacted

const trimming: ReadonlyArray<Case> = [
  { name: "plain spaces", input: "  hello  ", expected: "hello" },
  { name: "newlines and tabs", input: "\n\thello world\r\n", expected: "hello world" },
  { name: "non-breaking spaces", input: "\u00a0hello\u00a0", expected: "hello" },
  { name: "whitespace only", input: " \n\u00a0 ", expected: "" },
  { name: "inner whitespace kept", input: "  a  b  ", expected: "a  b" },
  { name: "array of strings", input: [" a ", "b\n"], expected: ["a", "b"] },
  {
    name: "objects in arrays in objects",
    input: { order: { lines: [{ sku: " A-1 ", tags: [" new ", { label: "\u00a0sale\n" }] }], note: " ok " } },
    expected: { order: { lines: [{ sku: "A-1", tags: ["new", { label: "sale" }] }], note: "ok" } }
  }
]

// Every family, with case and separator variants; each value is replaced whole.
const piiKeys: ReadonlyArray<string> = [
  "email",
  "eMail",
  "E-Mail",
  "EMAIL",
  "email_address",
  "useremail",
  "contactEmail",
  "phone",
  "phone_number",
  "phoneNumber",
  "mobile_phone",
  "Telephone",
  "ssn",
  "ssn-last4",
  "SSN_last_4",
  "social_security_number",
  "password",
  "Password",
  "user_password",
  "passwd",
  "card",
  "card_number",
  "cardNumber",
  "credit_card",
  "creditCard",
  "Credit-Card-Number",
  "cc_number",
  "pan",
  "cvv",
  "address",
  "street address",
  "home_address",
  "billingAddress",
  "homeaddress",
  "addresses",
  "dob",
  "DOB",
  "date_of_birth",
  "dateOfBirth",
  "birthdate",
  "birth_date",
  "ip",
  "ip_address",
  "IPAddress",
  "ipv4",
  "IPv6",
  "client_ip",
  "remote_ip",
  "clientIP"
]

// Words that contain a PII token but name something else.
const plainKeys: ReadonlyArray<string> = [
  "shipping",
  "description",
  "zip",
  "tip",
  "recipe",
  "ipsum",
  "cardinality",
  "discard",
  "card_count",
  "card_type",
  "addressable",
  "phoneme",
  "microphone",
  "hotel",
  "className",
  "adobe_id"
]

const patterns: ReadonlyArray<Case> = [
  { name: "e-mail", input: "write to john.doe+vip@example.co.uk today", expected: `write to ${R} today` },
  { name: "e-mail at the end of a sentence", input: "Contact: a_b@mail.example.com.", expected: `Contact: ${R}.` },
  { name: "two e-mails", input: "a@x.io, b@y.io", expected: `${R}, ${R}` },
  { name: "phone +1 with spaces", input: "call +1 555 123 4567 now", expected: `call ${R} now` },
  { name: "phone +1 compact", input: "sms +15551234567", expected: `sms ${R}` },
  { name: "phone (555) 123-4567", input: "office (555) 123-4567.", expected: `office ${R}.` },
  { name: "phone 555-123-4567", input: "tel 555-123-4567 ext 2", expected: `tel ${R} ext 2` },
  { name: "phone 555.123.4567", input: "fax: 555.123.4567", expected: `fax: ${R}` },
  { name: "phone 1-800", input: "toll free 1-800-555-0199", expected: `toll free ${R}` },
  { name: "phone +44", input: "London +44 20 7946 0958", expected: `London ${R}` },
  { name: "SSN", input: "ssn is 123-45-6789, ok", expected: `ssn is ${R}, ok` },
  { name: "card with spaces", input: "paid with 4111 1111 1111 1111 yesterday", expected: `paid with ${R} yesterday` },
  { name: "card with dashes", input: "card 5555-5555-5555-4444", expected: `card ${R}` },
  { name: "card digits only", input: "pan=4111111111111111", expected: `pan=${R}` },
  { name: "Amex 4-6-5", input: "amex 3782 822463 10005", expected: `amex ${R}` },
  { name: "Amex digits only", input: "378282246310005", expected: R },
  { name: "Discover", input: "6011111111111117", expected: R },
  { name: "IPv4 in text", input: "from 192.168.1.1 via 10.0.0.254", expected: `from ${R} via ${R}` },
  { name: "IPv4 with port", input: "host 203.0.113.7:8080", expected: `host ${R}:8080` },
  { name: "bare dotted quad", input: "1.2.3.4", expected: R },
  { name: "IPv6 full", input: "src 2001:0db8:85a3:0000:0000:8a2e:0370:7334 end", expected: `src ${R} end` },
  { name: "IPv6 compressed", input: "src 2001:db8::1 end", expected: `src ${R} end` },
  { name: "IPv6 loopback", input: "bound to ::1", expected: `bound to ${R}` },
  { name: "IPv6 link-local", input: "fe80::1ff:fe23:4567:890a", expected: R },
  { name: "IPv6 in brackets with port", input: "[2001:db8::1]:443", expected: `[${R}]:443` },
  { name: "IPv4-mapped IPv6", input: "peer ::ffff:192.0.2.1", expected: `peer ${R}` },
  {
    name: "several kinds in one text",
    input: "  Jane (jane@x.com, 555-123-4567) from 8.8.8.8  ",
    expected: `Jane (${R}, ${R}) from ${R}`
  }
]

const luhnFails: ReadonlyArray<Case> = [
  { name: "16 digits failing Luhn", input: "1234567812345678", expected: "1234567812345678" },
  { name: "Visa-like failing Luhn", input: "4111111111111112", expected: "4111111111111112" },
  { name: "grouped, failing Luhn", input: "4111 1111 1111 1112", expected: "4111 1111 1111 1112" },
  { name: "Luhn-valid but too short", input: "411111111111", expected: "411111111111" },
  { name: "millisecond timestamp", input: "1705314600000", expected: "1705314600000" }
]

const lookAlikes: ReadonlyArray<string> = [
  "1.0.0",
  "v2.10.3",
  "1.2.3.4-beta",
  "v1.2.3.4",
  "2024-01-15T10:30:00Z",
  "2024-01-15T10:30:00.123+02:00",
  "2024-01-15",
  "2024-01-15 10:30:00",
  "550e8400-e29b-41d4-a716-446655440000",
  "12345678",
  "$1,234.56",
  "19.99",
  "10:30:00",
  "d41d8cd98f00b204e9800998ecf8427e",
  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
  "ORD-2024-000123",
  "2019-2024",
  "3.14159",
  "255.255.255.256",
  "000-12-3456",
  "std::vector and Foo::Bar",
  "Price +20%, 3+4",
  "shipped 2024-01-15, order 12345, total $19.99"
]

describe("Cleaner", () => {
  describe("trims every string", () => {
    it.each(trimming)("$name", ({ input, expected }) => {
      expect(clean(input)).toStrictEqual(expected)
    })
  })

  describe("redacts the value under a PII key", () => {
    it.each(piiKeys)("%s", (key) => {
      expect(clean({ [key]: " secret ", other: " x " })).toStrictEqual({ [key]: R, other: "x" })
    })

    it("whatever the value's type, keeping null", () => {
      const input = { email: 42, phone: { home: "1", work: "2" }, ip: ["1.1.1.1"], password: true, dob: null, ssn: "" }
      expect(clean(input)).toStrictEqual({ email: R, phone: R, ip: R, password: R, dob: null, ssn: R })
    })

    it("at any depth", () => {
      const input = { users: [{ name: " Ann ", contact: { eMail: "ann@x.io", Phone_Number: "555" } }] }
      expect(clean(input)).toStrictEqual({ users: [{ name: "Ann", contact: { eMail: R, Phone_Number: R } }] })
    })
  })

  describe("leaves keys that only contain a PII token", () => {
    it.each(plainKeys)("%s", (key) => {
      expect(clean({ [key]: " kept " })).toStrictEqual({ [key]: "kept" })
    })
  })

  describe("redacts PII found inside text", () => {
    it.each(patterns)("$name", ({ input, expected }) => {
      expect(clean(input)).toStrictEqual(expected)
    })
  })

  describe("leaves digit runs that fail the card checks", () => {
    it.each(luhnFails)("$name", ({ input, expected }) => {
      expect(clean(input)).toStrictEqual(expected)
    })
  })

  describe("leaves look-alikes alone", () => {
    it.each(lookAlikes)("%s", (text) => {
      expect(clean({ value: ` ${text} ` })).toStrictEqual({ value: text })
    })
  })

  it("leaves non-string scalars and null untouched", () => {
    const input = { n: 4111111111111111, f: 3.14, yes: true, no: false, nothing: null, list: [0, null, 5551234567] }
    expect(clean(input)).toStrictEqual({
      n: 4111111111111111,
      f: 3.14,
      yes: true,
      no: false,
      nothing: null,
      list: [0, null, 5551234567]
    })
    expect(clean(null)).toBeNull()
    expect(clean(12345678)).toBe(12345678)
    expect(clean(false)).toBe(false)
  })

  it("does not mutate its input", () => {
    const input = { email: "a@b.io", items: [{ note: " call 555-123-4567 " }], tags: [" x "] }
    const before = structuredClone(input)
    const output = clean(input)
    expect(input).toStrictEqual(before)
    expect(output).toStrictEqual({ email: R, items: [{ note: `call ${R}` }], tags: ["x"] })
    expect(output).not.toBe(input)
  })

  it("keeps a __proto__ key as a plain key", () => {
    const output = clean(JSON.parse(`{"__proto__": {"email": "a@b.io"}, "x": " y "}`))
    expect(Object.getPrototypeOf(output)).toBe(Object.prototype)
    expect(JSON.stringify(output)).toBe(`{"__proto__":{"email":"${R}"},"x":"y"}`)
  })

  describe("hostile shapes", () => {
    // Nested `depth` levels deep, alternating objects and arrays, with PII and padding at the bottom.
    const nested = (depth: number, leaf: unknown): unknown => {
      let value = leaf
      for (let i = 0; i < depth; i++) value = i % 2 === 0 ? { next: value } : [value]
      return value
    }
    const bottom = (value: unknown): unknown => {
      let current = value
      while (typeof current === "object" && current !== null) {
        current = Array.isArray(current) ? current[0] : (current as { readonly next: unknown }).next
      }
      return current
    }

    it("cleans at any depth, without recursion", () => {
      const deep = nested(100_000, { email: "a@b.io", note: " call 555-123-4567 " })
      const output = clean(deep)
      let last: unknown = output
      for (let i = 0; i < 100_000; i++) {
        last = Array.isArray(last) ? last[0] : (last as { readonly next: unknown }).next
      }
      expect(last).toStrictEqual({ email: R, note: `call ${R}` })
      expect(bottom(clean(nested(100_001, " x ")))).toBe("x")
    })

    it("copies a kept value at any depth, neither trimmed nor redacted", () => {
      const output = clean({ raw: nested(50_000, " a@b.io ") }, { keepKeys: ["raw"] })
      expect(bottom((output as { readonly raw: unknown }).raw)).toBe(" a@b.io ")
    })

    it("refuses a value that contains itself with an error that says so", () => {
      const cyclic: Record<string, unknown> = { name: " x " }
      cyclic["self"] = { again: cyclic }
      expect(() => clean(cyclic)).toThrow(/contains itself/)
      // The same object twice, side by side, is not a cycle.
      const shared = { note: " y " }
      expect(clean({ a: shared, b: [shared] })).toStrictEqual({ a: { note: "y" }, b: [{ note: "y" }] })
    })
  })

  describe("per-vendor rules", () => {
    it("adds PII keys, matched like the built-in ones", () => {
      const rules: CleanerRules = { piiKeys: ["account_holder", "taxId"] }
      const input = { AccountHolder: "Ann", primary_account_holder: "Bob", TAX_ID: "X1", holder: "Cy", email: "a@b.io" }
      expect(clean(input, rules)).toStrictEqual({
        AccountHolder: R,
        primary_account_holder: R,
        TAX_ID: R,
        holder: "Cy",
        email: R
      })
      expect(clean({ taxId: "X1" })).toStrictEqual({ taxId: "X1" })
    })

    it("keeps keys exactly as they are", () => {
      const rules: CleanerRules = { keepKeys: ["raw_payload", "ip"] }
      const input = {
        rawPayload: { email: " a@b.io ", note: " 555-123-4567 " },
        IP: " 10.0.0.1 ",
        ip_address: "10.0.0.1",
        note: " hi "
      }
      expect(clean(input, rules)).toStrictEqual({
        rawPayload: { email: " a@b.io ", note: " 555-123-4567 " },
        IP: " 10.0.0.1 ",
        ip_address: R,
        note: "hi"
      })
    })

    it("copies kept values instead of sharing them", () => {
      const input = { raw: { list: [1, 2] } }
      const output = clean(input, { keepKeys: ["raw"] })
      expect(output).toStrictEqual({ raw: { list: [1, 2] } })
      expect((output as { readonly raw: unknown }).raw).not.toBe(input.raw)
    })

    it("turns pattern redaction off but still trims and redacts by key", () => {
      const rules: CleanerRules = { redactPatterns: false }
      const input = { note: " mail a@b.io or 555-123-4567 from 10.0.0.1 ", email: "a@b.io" }
      expect(clean(input, rules)).toStrictEqual({ note: "mail a@b.io or 555-123-4567 from 10.0.0.1", email: R })
    })

    it("does not leak one vendor's rules into another call", () => {
      const input = { nickname: " Al ", note: "a@b.io" }
      expect(clean(input, { piiKeys: ["nickname"], redactPatterns: false })).toStrictEqual({
        nickname: R,
        note: "a@b.io"
      })
      expect(clean(input)).toStrictEqual({ nickname: "Al", note: R })
      expect(clean(input, {})).toStrictEqual({ nickname: "Al", note: R })
    })
  })

  it("isPiiKey answers under the merged rules", () => {
    expect(isPiiKey("E-Mail")).toBe(true)
    expect(isPiiKey("shipping")).toBe(false)
    expect(isPiiKey("nickname", { piiKeys: ["nickname"] })).toBe(true)
    expect(isPiiKey("email", { keepKeys: ["email"] })).toBe(false)
  })

  it.effect("cleans through the service layer", () =>
    Effect.gen(function* () {
      const cleaner = yield* Cleaner
      const output = yield* cleaner.clean({
        contact: { email: "a@b.io", note: " ring +44 20 7946 0958 " },
        id: " 12345678 "
      })
      assert.deepStrictEqual(output, { contact: { email: R, note: `ring ${R}` }, id: "12345678" })
      const kept = yield* cleaner.clean({ email: " a@b.io " }, { keepKeys: ["email"] })
      assert.deepStrictEqual(kept, { email: " a@b.io " })
    }).pipe(Effect.provide(CleanerLayer))
  )
})
