/**
 * @vendorflow/mongo: the job store on MongoDB (official `mongodb` driver). `MongoJobStore.layer` and
 * `MongoJobStore.layerConfig` provide core's `JobStore` and the MongoDB-specific `MongoJobStore`.
 *
 * @since 0.1.0
 */
export * as MongoJobStore from "./MongoJobStore.ts"
