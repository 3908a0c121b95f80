/** An API error as the page shows it: announced to screen readers at once. */
export const Problem = ({ error }: { readonly error: string | undefined }) =>
  error === undefined ? null : (
    <p class="problem" role="alert">
      {error}
    </p>
  )
