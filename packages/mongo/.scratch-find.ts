import { Effect } from "effect"
import * as S from "./test/mongoServer.ts"
const t = Date.now()
console.log(await Effect.runPromise(S.findDocker), Date.now() - t, "ms")
