import { createServer } from "node:http"
import { rmSync } from "node:fs"
const path = "/tmp/fake-docker.sock"
rmSync(path, { force: true })
createServer((req, res) => { console.error("fake docker:", req.method, req.url); if (req.url?.endsWith("/_ping")) { res.end("OK") } else { res.statusCode = 500; res.end(JSON.stringify({ message: "fake engine" })) } }).listen(path)
