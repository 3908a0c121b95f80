/**
 * What the hand-written servers accept as a job: any JSON object; anything else is answered 422
 * with {@link invalidPayload}.
 */
export const isJobPayload = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

export const invalidPayload = { type: "invalid-payload", status: 422 } as const
