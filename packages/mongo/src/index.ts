/**
 * @vendorflow/mongo: the job store on MongoDB (official `mongodb` driver). `MongoBackend` is it as
 * part of a core `Backend` (jobs here, the queue and the rest in another backend); `MongoJobStore.layer`
 * and `MongoJobStore.layerConfig` provide core's `JobStore` and the MongoDB-specific `MongoJobStore`.
 *
 * @since 0.1.0
 */
export * as MongoBackend from "./MongoBackend.ts"
export * as MongoJobStore from "./MongoJobStore.ts"
