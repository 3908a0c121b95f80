import { OpenApi } from "effect/http-api"
import { Api } from "@vendorflow/core"
console.log(JSON.stringify(OpenApi.fromApi(Api.Api), null, 1))
