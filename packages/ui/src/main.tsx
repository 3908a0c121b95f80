/** The dashboard's entry: renders {@link App} into `#app`. */
import { render } from "preact"
import { App } from "./App.tsx"
// oxlint-disable-next-line import/no-unassigned-import -- a stylesheet, bundled by Vite
import "./styles.css"

const root = document.getElementById("app")
if (root !== null) render(<App />, root)
